"""What a model family provides: how to load (pretrained or tiny random-init), which heads it has, and how
it runs inference. One module per family registers a subclass in FAMILIES."""

from __future__ import annotations

import hashlib
import json
import sys
import types
from typing import TYPE_CHECKING

from biotune.data.location import cache_dir
from biotune.errors import BiotuneError, first_line
from biotune.fields import ConfigFieldError
from biotune.registry import Registry

from .aliases import resolve
from .cache import save_model_folder
from .gguf import materialize

if TYPE_CHECKING:
    import torch


class ModelFamily:
    name = ""
    generative = True  # writes its answers as text (prompts, parsers); False: task heads (encoders)
    peft_task_type = "CAUSAL_LM"
    config_class = None  # transformers config class used for `random_init`
    head_modules: tuple[str, ...] = ()  # task-head modules, trained in full by PEFT methods

    def claims(self, config) -> bool:
        """Whether a model with this transformers config belongs to the family (biotune.models.family_of)."""
        return False

    def peft_task_type_for(self, head: str) -> str:
        return self.peft_task_type

    # -- heads (biotune.models.heads) ----------------------------------------------------------------
    def head_for(self, task: str) -> str:
        return "lm"

    def init_head(self, model, head: str, targets: list) -> None:
        """`model.head_bias: prior` (encoders, biotune.models.encoder): a new head's bias from the training
        targets. Generative families' heads are the checkpoint's."""

    def precise_head(self, model) -> int:
        """Make the task head's modules (`head_modules`; under a PEFT wrapper, the wrapper of the trained copy)
        compute in fp32 with autocast off, their inputs cast to their weights' dtype (fp32 for a head that trains):
        what a head whose output is the prediction needs under bf16 (Head.full_precision). Returns how many
        modules were changed."""

        import torch

        done: list[str] = []
        for name, module in model.named_modules():
            if name.rsplit(".", 1)[-1] not in self.head_modules or any(name.startswith(d + ".") for d in done):
                continue
            params = list(module.parameters())
            # the weights that compute: the trained copy under a PEFT wrapper (the original stays in the base's dtype)
            weights = next((p for p in params if p.requires_grad), params[0] if params else None)
            if weights is None:
                continue
            done.append(name)

            def forward(
                self_, *args, _inner=module.forward, _dtype=weights.dtype, _device=weights.device.type, **kwargs
            ):
                def cast(v):
                    return v.to(_dtype) if torch.is_tensor(v) and v.is_floating_point() else v

                with torch.autocast(device_type=_device, enabled=False):
                    return _inner(*map(cast, args), **{k: cast(v) for k, v in kwargs.items()})

            module.forward = types.MethodType(forward, module)
        return len(done)

    def pooler_for(self, mcfg, head: str) -> str:
        """`model.pooler: auto` resolved (biotune.models.encoder): the checkpoint's own, but for encoders whose
        pooler was never trained."""
        return "checkpoint"

    def resolve_head(self, mcfg, spec) -> str:
        """The head a model of this family has on `spec`'s task: `model.head` where set, else the task's."""
        return getattr(mcfg, "head", None) or self.head_for(spec.task)  # a study's model entry may leave it out

    def check_head(self, head: str | None, task: str) -> None:

        if head is None:
            return
        expected = self.head_for(task)
        if head != expected:
            raise ConfigFieldError(
                "model.head",
                f"{head!r} does not fit the {self.name} family on a {task} task; valid: {expected} "
                "(or leave model.head out)",
            )

    # -- loading -----------------------------------------------------------------------------------
    def auto_class(self, head: str):
        raise NotImplementedError

    def head_kwargs(self, head: str, spec) -> dict:
        return {}

    def load_tokenizer(self, mcfg):
        from transformers import AutoTokenizer

        ref = resolve(mcfg.tokenizer or mcfg.path)
        revision = {"revision": mcfg.revision} if mcfg.revision and not mcfg.tokenizer else {}
        tokenizer = AutoTokenizer.from_pretrained(
            materialize(ref), trust_remote_code=mcfg.trust_remote_code, **revision
        )
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    def random_config_class(self, fields: dict):
        """The config class a `random_init` block builds (a family may pick it from, and pop, a field)."""
        return self.config_class

    def random_config(self, mcfg, tokenizer):
        fields = dict(mcfg.random_init)
        config_class = self.random_config_class(fields)
        fields.setdefault("vocab_size", len(tokenizer))
        for name in ("pad_token_id", "eos_token_id", "bos_token_id"):
            value = getattr(tokenizer, name, None)
            if value is not None:
                fields.setdefault(name, value)
        return config_class(**fields)

    def checkpoint(self, mcfg, tokenizer, head: str, spec, seed: int) -> str:
        """A folder `from_pretrained` loads: the resolved model, or a random-init model saved once."""
        if not mcfg.random_init:
            return materialize(resolve(mcfg.path))
        key = json.dumps(
            [self.name, head, mcfg.random_init, mcfg.tokenizer or mcfg.path, spec.name, seed],
            sort_keys=True,
            default=str,
        )
        folder = cache_dir() / "random-init" / hashlib.sha256(key.encode()).hexdigest()[:16]
        if not (folder / "config.json").is_file():
            config = self.random_config(mcfg, tokenizer)
            for k, v in self.head_kwargs(head, spec).items():
                setattr(config, k, v)
            import torch

            torch.manual_seed(seed)
            save_model_folder(self.auto_class(head).from_config(config), tokenizer, folder)
        return str(folder)

    def load(
        self,
        mcfg,
        spec,
        head: str,
        device: torch.device,
        dtype: torch.dtype,
        quantization=None,
        seed: int = 0,
        attn_implementation: str | None = None,
    ):
        """(model, tokenizer) on `device`. `quantization`: a transformers BitsAndBytesConfig (QLoRA)."""
        # safetensors only: a pickled checkpoint (pytorch_model.bin) can run code when it loads
        kwargs = {
            "dtype": dtype,
            "trust_remote_code": mcfg.trust_remote_code,
            "use_safetensors": True,
            **self.head_kwargs(head, spec),
        }
        revision = {"revision": mcfg.revision} if mcfg.revision and not mcfg.random_init else {}
        kwargs.update(revision)
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        if quantization is not None:
            kwargs.update(quantization_config=quantization, device_map={"": device})
        try:
            ref = resolve(mcfg.path)
            if not mcfg.random_init and not ref.gguf_file:  # config first: it says whether remote code is needed
                from transformers import AutoConfig

                AutoConfig.from_pretrained(ref.path, trust_remote_code=mcfg.trust_remote_code, **revision)
            tokenizer = self.load_tokenizer(mcfg)
            path = self.checkpoint(mcfg, tokenizer, head, spec, seed)
            model, info = _quiet_load(self.auto_class(head), path, kwargs)
        except (OSError, ValueError) as e:
            raise BiotuneError(self.explain_load_error(mcfg, e)) from None
        say = self.describe_loading(head, info)
        if say:
            print(say, file=sys.stderr, flush=True)
        if quantization is None:
            model.to(device)
        return model, tokenizer

    def describe_loading(self, head: str, info: dict) -> str:
        """One line about weights the checkpoint did not have or did not use: a new task head (`head_modules`) is
        expected and said plainly; anything else is listed as a warning. Empty where every weight was loaded."""
        missing, unexpected = sorted(info.get("missing_keys") or ()), sorted(info.get("unexpected_keys") or ())
        new_head = [k for k in missing if k.split(".")[0] in self.head_modules]
        other = [k for k in missing if k not in new_head]
        parts = []
        if new_head:
            parts.append(
                f"a new {head} head ({', '.join(new_head)}) was created and is trained from scratch: expected, the "
                "checkpoint has no head for this task"
            )
        if other:
            parts.append(f"warning: weights not in the checkpoint, initialised at random: {', '.join(other)}")
        if unexpected:
            shown = ", ".join(unexpected[:6]) + (f" and {len(unexpected) - 6} more" if len(unexpected) > 6 else "")
            parts.append(f"checkpoint weights this model does not use: {shown}")
        return "; ".join(parts)

    def explain_load_error(self, mcfg, e: Exception) -> str:
        first = first_line(e)
        if "safetensors" in str(e).lower():
            first += (
                " (biotune loads safetensors weights only, never pickled ones; convert a checkpoint you "
                "trust once with save_pretrained(..., safe_serialization=True), or use a hub revision "
                "that has model.safetensors)"
            )
        return f"cannot load model {mcfg.path!r} ({self.name} family): {first}"


FAMILIES: Registry[ModelFamily] = Registry("model family")


def register(family_class):
    FAMILIES.add(family_class.name, family_class())
    return family_class


def _quiet_load(auto_class, path: str, kwargs: dict):
    """`from_pretrained` with its loading information, transformers' own load report (a table of missing and
    unexpected keys, logged as a warning) left out: `describe_loading` says it in one line."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return auto_class.from_pretrained(path, output_loading_info=True, **kwargs)
    finally:
        hf_logging.set_verbosity(before)
