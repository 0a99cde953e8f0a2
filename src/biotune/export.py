"""`biotune export RUN_DIR --out DIR [--merge]`: a finished run's trained weights as a standard artifact.

- Without `--merge`: what the run trained, as the library writes it: an adapter method's peft folder
  (`adapter_config.json`, `adapter_model.safetensors`: load with `PeftModel.from_pretrained(base, DIR)`), or a fully
  fine-tuned model's transformers folder; with the tokenizer.
- With `--merge` (adapter methods that change weights: LoRA, DoRA, IA3, QLoRA): the base model with the adapter
  merged into it (`merge_and_unload`), one transformers folder (`AutoModel*.from_pretrained(DIR)`). A QLoRA adapter
  merges into the base loaded in bf16, not into its 4-bit weights (those are a lossy copy): the merged model is a
  bf16 model. Prompt-learning methods (P-tuning, prompt tuning, prefix tuning) have nothing to merge into weights.

Weights are written as safetensors only (the run's pickled `training_args.bin` is left out), with a model card
(`README.md`) naming the base model, dataset, method, its parameters, the test and dev scores and the run's
identity. The exported folder gives the run's predictions (tests/test_export.py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .config import validate_experiment
from .data import get_spec
from .errors import BiotuneError
from .methods import METHODS
from .models import FAMILIES
from .summary import RunSummary
from .yamlfile import read_yaml_file

_LEAVE_OUT = {"training_args.bin", "README.md"}


def _read_run(run_dir: Path):

    if not RunSummary.exists(run_dir) or not (run_dir / "config.yaml").is_file():
        raise BiotuneError(
            f"{run_dir} is not a finished run (no metrics.json / config.yaml): export a run folder "
            "that `biotune run` or a study finished"
        )
    config = run_dir / "config.yaml"
    cfg = validate_experiment(read_yaml_file(config, "run config", "dataset, model, method")[0], str(config))
    return cfg, RunSummary.read(run_dir)


def export_run(run_dir: str | Path, out: str | Path, merge: bool = False) -> Path:
    """Write the run's weights to `out` (must not exist or be empty); returns `out`."""
    from .train import writable_folder

    run_dir, out = Path(run_dir), Path(out)
    cfg, summary = _read_run(run_dir)
    method = METHODS.get(cfg.method.name)
    final = run_dir / "final"
    if not method.trains:
        raise BiotuneError(f"{run_dir}: {method.name} trains nothing; there are no weights to export")
    if not final.is_dir():
        raise BiotuneError(
            f"{run_dir} kept no trained weights (keep: {cfg.keep}): rerun it with keep: "
            f"{'model' if method.trains_base else 'adapter'} to export it"
        )
    if out.is_symlink():
        raise BiotuneError(f"{out} is a symlink (to {os.readlink(out)}): export into a real folder")
    if out.exists() and not out.is_dir():
        raise BiotuneError(f"{out} is a file: export into a new folder")
    if out.exists() and any(out.iterdir()):
        raise BiotuneError(f"{out} is not empty: export into a new folder")
    for p in final.iterdir():
        if p.is_symlink():
            raise BiotuneError(
                f"{p} is a symlink (to {os.readlink(p)}): an export copies only the run's own files; remove the link"
            )
    if merge and method.trains_base:
        merge = False  # a fully fine-tuned model is already one model
    if merge and not _mergeable(final):
        raise BiotuneError(
            f"{method.name} learns virtual tokens, not weight deltas: nothing to merge; export the "
            "adapter (without --merge)"
        )
    tmp = out.with_name(out.name + ".part")
    if tmp.is_symlink() or (tmp.exists() and not tmp.is_dir()):
        raise BiotuneError(f"{tmp} is in the way (a symlink or a file): remove it")
    shutil.rmtree(tmp, ignore_errors=True)
    writable_folder(out.parent)
    tmp.mkdir(parents=True)
    try:
        if merge:
            _merge(cfg, method, final, tmp)
        else:
            for p in final.iterdir():
                if p.is_file() and p.name not in _LEAVE_OUT and not p.name.endswith((".bin", ".pt", ".pth")):
                    shutil.copy2(p, tmp / p.name)
        (tmp / "README.md").write_text(model_card(cfg, summary, merged=merge, method=method), encoding="utf-8")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _mergeable(final: Path) -> bool:
    config = (
        json.loads((final / "adapter_config.json").read_text()) if (final / "adapter_config.json").is_file() else {}
    )
    return config.get("peft_type") not in ("P_TUNING", "PROMPT_TUNING", "PREFIX_TUNING")


def _merge(cfg, method, final: Path, out: Path) -> None:
    import torch
    from peft import PeftModel

    family = FAMILIES.get(cfg.model.family)
    spec = get_spec(cfg.dataset)
    head = family.resolve_head(cfg.model, spec)
    # QLoRA: the full-precision base (bf16), never its 4-bit copy; others: the base as the run trained on it (fp32)
    dtype = torch.bfloat16 if method.quantized else torch.float32
    base, tokenizer = family.load(cfg.model, spec, head, torch.device("cpu"), dtype, seed=cfg.seed)
    merged = PeftModel.from_pretrained(base, str(final)).merge_and_unload()
    merged.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))


def model_card(cfg, summary, merged: bool, method) -> str:

    spec = get_spec(cfg.dataset)
    m, dev = summary.metrics, summary.dev or {}
    base = cfg.model.path + (f" (revision {cfg.model.revision})" if cfg.model.revision else "")
    if cfg.model.random_init:
        base += " architecture, randomly initialised (random_init, seed " + str(cfg.seed) + ")"
    kind = (
        (
            "the base model with the adapter merged in"
            + (" (a QLoRA adapter merged into the bf16 base)" if method.quantized else "")
        )
        if merged
        else ("the fully fine-tuned model" if method.trains_base else f"the {method.name} adapter (peft)")
    )
    if merged or method.trains_base:
        load = (
            "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer  # or the class of the "
            "task head\nmodel = AutoModelForCausalLM.from_pretrained(DIR)\ntokenizer = "
            "AutoTokenizer.from_pretrained(DIR)\n```"
        )
    else:
        load = (
            "```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForCausalLM\nbase = "
            f"AutoModelForCausalLM.from_pretrained({cfg.model.path!r})  # the base named above\nmodel = "
            "PeftModel.from_pretrained(base, DIR)\n```"
        )
    params = ", ".join(f"{k}={v}" for k, v in cfg.method.params.items()) or "none"
    lines = [
        "---",
        "library_name: " + ("peft" if not (merged or method.trains_base) else "transformers"),
        "tags: [biotune, biomedical]",
        "---",
        "",
        f"# {cfg.resolved_name()}",
        "",
        f"{kind.capitalize()}, trained by biotune on **{spec.title}** ({spec.task}).",
        "",
        "| | |",
        "|---|---|",
        f"| base model | {base} |",
        f"| dataset | {spec.name} ({'BLURB' if spec.builtin else 'dataset file'}) |",
        f"| method | {method.name} ({params}) |",
        f"| training | learning rate {cfg.training.learning_rate}, {cfg.training.epochs} epochs, max steps "
        f"{cfg.training.max_steps}, batch {cfg.training.batch_size} x {cfg.training.grad_accum}, seed {cfg.seed} |",
        f"| test ({m.get('split', cfg.eval.split)}, {m.get('n', '?')} examples) | {m.get('score', float('nan')):.2f} "
        f"{m.get('metric', '')} |",
        f"| dev (model selection) | {dev.get('score', float('nan')):.2f} on {dev.get('n', '?')} examples |",
        f"| identity | {summary.identity_hash} |",
        "",
        "Load it:",
        "",
        load,
        "",
    ]
    return "\n".join(lines)
