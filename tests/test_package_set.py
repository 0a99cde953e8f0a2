"""biotune trains, predicts and scores with only torch, transformers, peft and accelerate besides its small pure-
Python dependencies: the package set of a GPU machine without `datasets` (and pyarrow), seqeval, bitsandbytes
or gguf (benchmarks/gpu_check.py runs there). The optional packages are hidden from a fresh interpreter's
imports, as if not installed."""

import subprocess
import sys
from pathlib import Path

import yaml

from test_study import TINY_LLAMA

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ("datasets", "pyarrow", "seqeval", "bitsandbytes", "gguf")
HIDE = f"""
import importlib.abc, sys
HIDDEN = {HIDDEN!r}
class Hidden(importlib.abc.MetaPathFinder):
    def __init__(self, finders):
        self.finders = finders
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            return None
        for finder in self.finders:
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                return spec
        return None
    def find_distributions(self, context=None):  # importlib.metadata: the hidden ones have no metadata either
        import importlib.metadata
        context = context or importlib.metadata.DistributionFinder.Context()
        if (context.name or "").lower().replace("-", "_") in HIDDEN:
            return iter(())
        for finder in self.finders:
            if hasattr(finder, "find_distributions"):
                yield from finder.find_distributions(context)
    def invalidate_caches(self):
        for finder in self.finders:
            getattr(finder, "invalidate_caches", lambda: None)()
sys.meta_path[:] = [Hidden(list(sys.meta_path))]
import importlib.util
assert importlib.util.find_spec("datasets") is None
from biotune.cli import main
main(sys.argv[1:])
"""


def test_a_lora_run_needs_no_datasets_seqeval_bitsandbytes_or_gguf(tmp_path):
    """As on the GPU machine: the GPU check's kit (GAD, the SmolLM2 tokenizer as plain files: the packaged model
    is a GGUF file, which needs gguf to read) is all the run reads."""
    kit = tmp_path / "kit"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--kit", "--kit-dir", str(kit)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    model = {**{k: v for k, v in TINY_LLAMA.items() if k != "name"}, "path": str(kit / "tokenizer")}
    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "dataset": "gad",
                "model": model,
                "method": {"name": "lora"},
                "data_dir": str(kit / "blurb"),
                "training": {
                    "max_steps": 4,
                    "batch_size": 2,
                    "train_limit": 8,
                    "dev_limit": 4,
                    "max_length": 160,
                    "learning_rate": 0.002,
                    "eval_steps": 2,
                    "save_steps": 2,
                },
                "eval": {"limit": 6},
                "output_dir": str(tmp_path / "out"),
            }
        )
    )
    r = subprocess.run(
        [sys.executable, "-c", HIDE, "run", str(path), "--no-progress"], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    import json

    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert summary["metrics"]["n"] == 6 and summary["training"]["steps"] == 4
    assert summary["metrics"]["score"] is not None and len(summary["training"]["dev_score_curve"]) == 2
