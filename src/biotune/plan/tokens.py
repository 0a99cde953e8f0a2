"""Token counts of the data a cell reads, measured with the run's own formatting: training features as
training builds them (prompt + answer, cut at `max_length`), evaluation prompts as evaluation builds them (the
shots included), answers as the target text the model is trained to write.

Splits of more than SAMPLE examples (400; $BIOTUNE_PLAN_SAMPLE) are measured on SAMPLE examples spread over
the split and scaled (said in the plan). The model's tokenizer is used where it loads without a download (an
alias, a folder, the local hub cache, or the hub when it is reachable); otherwise a proxy of the same kind, named
in the plan: the packaged SmolLM2 tokenizer (BPE, 49k) for generative models, MiniLM's (BERT WordPiece) for
encoders.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlparse

from biotune.config import ModelConfig
from biotune.data import get_spec
from biotune.data.catalog import load_split
from biotune.icl import ShotSelector
from biotune.models import FAMILIES
from biotune.models.aliases import ALIASES
from biotune.prompting import PromptBuilder
from biotune.tasks import task_for

SAMPLE = int(os.environ.get("BIOTUNE_PLAN_SAMPLE", 400))  # examples measured per split (the rest scaled)
PROXY = {True: "smollm2-135m", False: "minilm"}  # generative -> proxy tokenizer


@dataclass(frozen=True)
class SplitTokens:
    """Lengths of the examples of one split as a run reads them."""

    split: str
    n: int  # examples the run reads (after its limit)
    inputs: tuple[int, ...]  # per measured example: prompt (or encoder input) tokens
    targets: tuple[int, ...]  # per measured example: answer tokens written or trained on (end token included)

    @property
    def measured(self) -> int:
        return len(self.inputs)

    @property
    def scale(self) -> float:
        return self.n / max(1, self.measured)

    def max_input(self) -> int:
        return max(self.inputs, default=0)

    def max_target(self) -> int:
        return max(self.targets, default=0)


@cache
def _hub_reachable() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


@cache
def tokenizer_for(model_json: str, generative: bool):
    """(tokenizer, name of what was loaded: the model's own, or 'proxy: ...')."""

    mcfg = ModelConfig.model_validate_json(model_json)
    family = FAMILIES.get(mcfg.family)
    source = mcfg.tokenizer or mcfg.path
    hub_id = source not in ALIASES and not os.path.isdir(source)
    if hub_id:
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError):
            tok = None
        if tok is None and _hub_reachable():
            try:
                tok = AutoTokenizer.from_pretrained(source)
            except (OSError, ValueError):
                tok = None
        if tok is not None:
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            return tok, source
        proxy = PROXY[generative]
        return family.load_tokenizer(ModelConfig(family=mcfg.family, path=proxy)), f"proxy: {proxy}"
    return family.load_tokenizer(mcfg), source


def split_tokens(cfg, split: str, limit: int | None, purpose: str) -> SplitTokens:
    """Token lengths of `split` as the run `cfg` reads it for `purpose`: train (training features), dev_loss
    (the same features on dev), generate (evaluation prompts and the answers a trained model writes)."""
    from biotune.evaluate import subset_indices

    from .architecture import architecture

    chosen = subset_indices(_length(cfg.dataset, split, cfg.data_dir), limit)
    measured = tuple(chosen[i] for i in subset_indices(len(chosen), SAMPLE))
    family = FAMILIES.get(cfg.model.family)
    _, tokenizer_name = tokenizer_for(cfg.model.model_dump_json(), family.generative)
    shots = int(cfg.method.params.get("shots", 0) or 0) if purpose == "generate" else 0
    context = (architecture(cfg).max_positions or cfg.training.max_length * 4) if purpose == "generate" else 0
    # everything the lengths depend on (models sharing a tokenizer share the measurement)
    key = (
        cfg.dataset,
        cfg.data_dir,
        split,
        measured,
        purpose,
        tokenizer_name,
        family.name,
        cfg.model.head,
        cfg.training.max_length,
        cfg.output_format,
        shots,
        cfg.eval.shot_split if shots else None,
        context,
        cfg.eval.max_new_tokens,
    )
    if key not in _MEASURED:
        ds = load_split(cfg.dataset, split, cfg.data_dir)
        _MEASURED[key] = _measure(cfg, split, [ds[i] for i in measured], purpose, shots, context)
    inputs, targets = _MEASURED[key]
    return SplitTokens(split, len(chosen), inputs, targets)


_MEASURED: dict = {}


@cache
def _length(ref: str, split: str, data_dir: str | None) -> int:

    return len(load_split(ref, split, data_dir))


def _measure(cfg, split, examples, purpose, shots, context) -> tuple[tuple[int, ...], tuple[int, ...]]:
    from biotune.features import encoder_features, generative_features

    spec = get_spec(cfg.dataset)
    family = FAMILIES.get(cfg.model.family)
    task = task_for(spec, cfg.output_format)
    tokenizer, _ = tokenizer_for(cfg.model.model_dump_json(), family.generative)
    max_length = cfg.training.max_length
    if not family.generative:
        from biotune.models.encoder import label_list

        head = family.resolve_head(cfg.model, spec)
        feats = encoder_features(task, tokenizer, examples, head, label_list(spec), max_length)
        return tuple(len(f["input_ids"]) for f in feats), tuple(0 for _ in feats)
    if purpose in ("train", "dev_loss"):
        encoder_decoder = family.name == "seq2seq"
        feats = generative_features(task, tokenizer, examples, max_length, encoder_decoder)
        if encoder_decoder:
            return tuple(len(f["input_ids"]) for f in feats), tuple(len(f["labels"]) for f in feats)
        answers = tuple(sum(1 for t in f["labels"] if t != -100) for f in feats)
        return tuple(len(f["input_ids"]) - a for f, a in zip(feats, answers)), answers
    return _prompts(cfg, task, tokenizer, examples, split, shots, context)


def _prompts(cfg, task, tokenizer, examples, split, shots, context):
    """Evaluation prompts as evaluate_dataset builds them, and the answers' lengths (capped as generation is)."""
    from biotune.evaluate import answer_budget, subset_indices

    budget = answer_budget(task, cfg.eval)
    shots_for = [[] for _ in examples]
    if shots:
        # the shots' lengths, not the shots themselves, matter here: random shots of seed 0 from up to 2,000 pool
        # examples spread over the split stand in for every seed's (and for kNN ones, which need the embedder)
        ds = load_split(cfg.dataset, cfg.eval.shot_split, cfg.data_dir)
        pool = ds.select(subset_indices(len(ds), 2000)).to_list()
        selector = ShotSelector(
            pool, shots, task.render_input, "random", 0, exclude_same_id=cfg.eval.shot_split == split
        )
        shots_for = selector.select_all(examples)
    builder = PromptBuilder(tokenizer, context)
    inputs, targets = [], []
    for ex, chosen in zip(examples, shots_for):
        prompt = builder.build(
            task.instruction(),
            [(task.render_input(s), task.target(s)) for s in chosen],
            task.render_input(ex),
            reserve=budget,
        )
        inputs.append(prompt.n_tokens)
        answer = len(tokenizer(task.target(ex), add_special_tokens=False)["input_ids"]) + 1  # + end of turn
        targets.append(min(answer, budget))
    return tuple(inputs), tuple(targets)
