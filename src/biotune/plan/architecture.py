"""What the planner knows of a model: its shapes and parameter counts, read off the real architecture built on
PyTorch's `meta` device (no memory, no weights) with the method applied exactly as a run applies it, so the
trainable count is peft's own.

The config comes from the model itself where it can (an alias, a local folder, `random_init`, the hub when it
is reachable) and, for the paper's hub models, from the shipped copy of their config.json (known_models.yaml),
so a plan needs no download.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import torch
import yaml

from biotune.config import MethodConfig, ModelConfig
from biotune.data import get_spec
from biotune.errors import BiotuneError, first_line
from biotune.methods import METHODS
from biotune.models import FAMILIES
from biotune.models.aliases import resolve
from biotune.models.heads import HEADS


@dataclass(frozen=True)
class Stack:
    """One stack of identical transformer layers (a decoder-only model has one; T5 an encoder and a decoder)."""

    layers: int
    hidden: int
    heads: int
    q_dim: int  # heads x head dim
    kv_dim: int  # key/value heads x head dim (GQA: smaller than q_dim)
    intermediate: int
    glu: bool  # gated MLP (LLaMA, GLM, T5 v1.1): gate, up, activation and product are kept for backward
    causal: bool
    linear_params: int  # weights of the stack's linear layers (one matmul multiply-add each per token)
    cross_kv_params: int = 0  # decoder of an encoder-decoder: cross-attention K/V weights, applied per source token
    cross_attention: bool = False

    @property
    def layer_params(self) -> int:
        return (self.linear_params + self.cross_kv_params) // max(1, self.layers)


@dataclass(frozen=True)
class Architecture:
    family: str
    total_params: int  # tied weights once
    trainable_params: int  # after the method is applied (peft's count)
    quantizable_params: int  # what QLoRA stores in 4-bit: the base's linear layers but the output head
    head_params: int  # the LM head or the classifier (computed at the positions the loss or prediction reads)
    vocab: int
    labels: int  # an encoder head's outputs
    token_head: bool  # the head runs at every position (LM heads, token classification), not at one
    decoder: Stack | None  # decoder-only: the model; encoder-decoder: the decoder
    encoder: Stack | None  # BERT: the model; encoder-decoder: the encoder
    virtual_tokens: int = 0  # soft-prompt methods: learned tokens in front of every sequence
    virtual_kind: str | None = None  # input: prepended to the input embeddings (P-tuning, prompt tuning);
    #                                  prefix: keys and values in every layer only (prefix tuning)
    generation_cached: bool = True  # False: biotune generates by full forward passes, one prompt at a time
    adapter_per_token_params: int = 0  # adapter weights a (decoder-side) token passes through (LoRA: A and B)
    adapter_source_params: int = 0  # an encoder-decoder's adapters on the source side (encoder, cross K / V)
    extra_train_token_flops: float = 0.0  # the method's own work per training token (Method.extra_flops)
    extra_call_flops: float = 0.0  # the method's own work per forward pass
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    position_bias: bool = False  # T5's relative attention bias: one heads x length x length tensor per stack
    max_positions: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def stacks(self) -> list[Stack]:
        return [s for s in (self.encoder, self.decoder) if s is not None]


@cache
def known_models() -> dict[str, dict]:
    return yaml.safe_load(resources.files("biotune.plan").joinpath("known_models.yaml").read_text(encoding="utf-8"))


def model_config(mcfg):
    """The transformers config of the model an experiment names (offline for aliases, folders, random_init and
    the models in known_models.yaml)."""
    from transformers import CONFIG_MAPPING, AutoConfig

    family = FAMILIES.get(mcfg.family)
    if mcfg.random_init:  # built as the run builds it (vocabulary and special tokens from the tokenizer)
        return family.random_config(mcfg, family.load_tokenizer(mcfg))
    known = known_models().get(mcfg.path)
    if known is not None and not mcfg.revision:
        fields = dict(known)
        return CONFIG_MAPPING[fields.pop("model_type")](**fields)
    ref = resolve(mcfg.path)
    revision = {"revision": mcfg.revision} if mcfg.revision else {}
    try:
        if ref.gguf_file:  # the model folder a run loads (de-quantized once): reading the GGUF's fields takes seconds
            from biotune.models.gguf import materialize

            return AutoConfig.from_pretrained(materialize(ref))
        return AutoConfig.from_pretrained(ref.path, trust_remote_code=mcfg.trust_remote_code, **revision)
    except (OSError, ValueError) as e:
        first = first_line(e)
        raise BiotuneError(
            f"cannot plan for model {mcfg.path!r}: its config cannot be read ({first}); plans work "
            "offline for aliases, local folders, random_init and the models in biotune's "
            f"known_models.yaml ({', '.join(known_models())})"
        ) from None


def _dims(config) -> dict:
    """Shapes by the names transformers' configs use (LLaMA / GLM / BERT style, or T5's)."""
    g = lambda *names, default=None: next(
        (getattr(config, n) for n in names if getattr(config, n, None) is not None), default
    )
    hidden = g("hidden_size", "d_model")
    heads = g("num_attention_heads", "num_heads")
    head_dim = g("head_dim", "d_kv", default=hidden // heads)
    kv_heads = g("num_key_value_heads", default=heads)
    return {
        "hidden": hidden,
        "heads": heads,
        "q_dim": heads * head_dim,
        "kv_dim": kv_heads * head_dim,
        "intermediate": g("intermediate_size", "d_ff", default=4 * hidden),
        "layers": g("num_hidden_layers", "num_layers"),
        "decoder_layers": g("num_decoder_layers"),
        "vocab": g("vocab_size"),
        "hidden_dropout": float(g("hidden_dropout_prob", "dropout_rate", "hidden_dropout", default=0.0) or 0.0),
        "attention_dropout": float(
            g("attention_probs_dropout_prob", "attention_dropout", "dropout_rate", default=0.0) or 0.0
        ),
        "max_positions": g("max_position_embeddings", "n_positions"),
    }


def _stack(linear: int, layers: int, d: dict, causal: bool, cross_kv: int = 0, cross: bool = False) -> Stack:
    h, i = d["hidden"], d["intermediate"]
    attention = (2 * d["q_dim"] + 2 * d["kv_dim"]) * h + (2 * d["q_dim"] * h if cross else 0)
    mlp = linear / max(1, layers) - attention
    return Stack(
        layers=layers,
        hidden=h,
        heads=d["heads"],
        q_dim=d["q_dim"],
        kv_dim=d["kv_dim"],
        intermediate=i,
        glu=mlp > 2.5 * h * i,
        causal=causal,
        linear_params=linear,
        cross_kv_params=cross_kv,
        cross_attention=cross,
    )


def architecture(cfg) -> Architecture:
    """The Architecture of an experiment's model with its method applied (cached by what decides it)."""

    spec = get_spec(cfg.dataset)
    family = FAMILIES.get(cfg.model.family)
    head = family.resolve_head(cfg.model, spec)
    head_kwargs = family.head_kwargs(head, spec)
    key = json.dumps([cfg.model.model_dump(), cfg.method.model_dump(), head, head_kwargs], sort_keys=True, default=str)
    return _architecture(key)


# a config's layer counts, by the names transformers' configs use (one stack, or T5's encoder and decoder)
_DEPTH = ("num_hidden_layers", "num_layers", "num_decoder_layers")
# the numbers `_measure` reads off a built model: each one the same for every layer, so affine in the depth
_PER_DEPTH = (
    "total",
    "trainable",
    "head_params",
    "body",
    "enc",
    "cross_kv",
    "source",
    "target",
    "virtual",
    "extra_train_token",
    "extra_call",
)


@cache
def _architecture(key: str) -> Architecture:

    mdump, method_dump, head, head_kwargs = json.loads(key)
    mcfg, mconf = ModelConfig(**mdump), MethodConfig(**method_dump)
    family, method = FAMILIES.get(mcfg.family), METHODS.get(mconf.name)
    config = model_config(mcfg)
    for k, v in head_kwargs.items():
        setattr(config, k, v)
    d = _dims(config)
    params = method.params_model(**mconf.params)
    m = _extrapolated(config, family, method, head, params) or _measure(config, family, method, head, params)
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    if encoder_decoder:
        dec = m["body"] - m["enc"] - m["cross_kv"]
        encoder = _stack(m["enc"], d["layers"], d, causal=False)
        decoder = _stack(dec, d["decoder_layers"] or d["layers"], d, causal=True, cross_kv=m["cross_kv"], cross=True)
    elif family.generative:
        encoder, decoder = None, _stack(m["body"], d["layers"], d, causal=True)
    else:
        encoder, decoder = _stack(m["body"], d["layers"], d, causal=False), None
    prompt_learning, virtual_kind = m["prompt_learning"], m["virtual_kind"]
    return Architecture(
        family=family.name,
        total_params=m["total"],
        trainable_params=m["trainable"],
        quantizable_params=m["body"],
        head_params=m["head_params"],
        vocab=d["vocab"],
        labels=int(getattr(config, "num_labels", 0) or 0),
        token_head=HEADS.get(head).token_level,
        decoder=decoder,
        encoder=encoder,
        virtual_tokens=m["virtual"],
        virtual_kind=virtual_kind,
        generation_cached=not prompt_learning or (virtual_kind == "input" and not encoder_decoder),
        adapter_per_token_params=m["target"],
        adapter_source_params=m["source"],
        extra_train_token_flops=m["extra_train_token"],
        extra_call_flops=m["extra_call"],
        hidden_dropout=d["hidden_dropout"],
        attention_dropout=d["attention_dropout"],
        position_bias=bool(getattr(config, "relative_attention_num_buckets", None)),
        max_positions=d["max_positions"],
    )


def _extrapolated(config, family, method, head, params) -> dict | None:
    """`_measure` of the full-depth model from copies of 1, 2 and 3 layers (an 8B model's adapters take
    seconds to place even on the meta device; a 1-layer copy, milliseconds). Every count is affine in the depth
    when the layers past the first are identical, which the third copy checks: where it is not (or the depth is
    small, or a regular expression picks the adapted layers), None, and the full model is measured."""
    depths = {getattr(config, n) for n in _DEPTH if isinstance(getattr(config, n, None), int)}
    targets = getattr(params, "target_modules", None)
    if len(depths) != 1 or (isinstance(targets, str) and targets != "all-linear"):
        return None
    depth = depths.pop()
    if depth <= 3 or isinstance(getattr(config, "layer_types", None), list):
        return None
    small = []
    for k in (1, 2, 3):
        c = copy.deepcopy(config)
        for n in _DEPTH:
            if isinstance(getattr(c, n, None), int):
                setattr(c, n, k)
        try:
            small.append(_measure(c, family, method, head, params))
        except Exception:  # noqa: BLE001 -- a config that cannot be cut down is measured whole
            return None
    one, two, three = small
    if any(one[k] != two[k] for k in ("prompt_learning", "virtual_kind")):
        return None
    out = dict(one)
    for k in _PER_DEPTH:
        step = two[k] - one[k]
        if not math.isclose(three[k] - two[k], step, rel_tol=1e-9, abs_tol=1e-6):
            return None
        out[k] = one[k] + (depth - 1) * step
        if isinstance(one[k], int):
            out[k] = int(out[k])
    return out


def _measure(config, family, method, head, params) -> dict:
    """The counts of the model built from `config` (on the meta device) with the method applied."""
    with torch.device("meta"):
        model = family.auto_class(head).from_config(config)
        total = _count(model)
        model = _apply(method, model, family, head, params)
    trainable = _count(model, trainable_only=True) if method.trains else 0  # in-context methods train nothing
    linear = _linears(model)
    # the output head, and BERT's pooler (one position, like a sequence head): not passed by every token
    skip = set(family.head_modules) | {"lm_head", "pooler"}
    head_params = sum(n for name, n in linear.items() if _leaf_in(name, skip))
    body = {name: n for name, n in linear.items() if not _leaf_in(name, skip)}
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    enc = cross_kv = 0
    if encoder_decoder:
        enc = sum(n for name, n in body.items() if ".encoder." in f".{name}")
        cross_kv = sum(n for name, n in body.items() if ".decoder." in f".{name}" and _cross_kv(name))
    from biotune.inference import _has_virtual_tokens, _is_prompt_learning

    prompt_learning = _is_prompt_learning(model)
    virtual_kind = ("input" if _has_virtual_tokens(model) else "prefix") if prompt_learning else None
    source = target = 0
    if method.trains and not method.trains_base and not prompt_learning:
        for name, p in model.named_parameters():
            if p.requires_grad and not _leaf_in(name, skip | {"modules_to_save"}):
                side = encoder_decoder and (".encoder." in f".{name}" or _cross_kv(name.split(".lora_")[0]))
                source, target = (source + p.numel(), target) if side else (source, target + p.numel())
    adapted = [
        (m.base_layer.in_features, m.base_layer.out_features)
        for _, m in model.named_modules()
        if isinstance(getattr(m, "base_layer", None), torch.nn.Linear)
    ]  # peft's tuner layers
    extra = method.extra_flops(adapted, params)
    return {
        "total": total,
        "trainable": trainable,
        "head_params": head_params,
        "body": sum(body.values()),
        "enc": enc,
        "cross_kv": cross_kv,
        "source": source,
        "target": target,
        "virtual": _virtual(model),
        "extra_train_token": extra["train_token"],
        "extra_call": extra["call"],
        "prompt_learning": prompt_learning,
        "virtual_kind": virtual_kind,
    }


def _apply(method, model, family, head, params):
    try:
        return method.apply(model, family, head, params)
    except ImportError:  # QLoRA without bitsandbytes here: its adapters are LoRA's, shaped the same
        from biotune.methods.base import PeftMethod

        return PeftMethod.apply(method, model, family, head, params)


def _count(model, trainable_only: bool = False) -> int:
    seen, n = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        n += p.numel()
    return n


def _linears(model) -> dict[str, int]:
    """Weights of the base model's linear layers by module name (adapters and soft-prompt encoders left out)."""
    out, seen = {}, set()
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or any(
            part.startswith(("lora_", "prompt_encoder", "vera_")) for part in name.split(".")
        ):
            continue
        if id(module.weight) in seen:
            continue
        seen.add(id(module.weight))
        out[name.removesuffix(".base_layer")] = module.weight.numel()
    return out


def _leaf_in(name: str, modules: set[str]) -> bool:
    return any(part in modules for part in name.split("."))


def _cross_kv(name: str) -> bool:
    parts = name.split(".")
    return "EncDecAttention" in parts and parts[-1] in ("k", "v")


def _virtual(model) -> int:
    config = getattr(model, "peft_config", {}).get("default") if hasattr(model, "peft_config") else None
    if config is None or not getattr(config, "is_prompt_learning", False):
        return 0
    return int(config.num_virtual_tokens)
