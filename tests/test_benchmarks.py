"""The committed benchmark results and BENCHMARKS.md agree (the table is rendered from the JSON files, never
edited by hand). Speed itself is measured by benchmarks/run.py, not asserted here."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmarks_md_is_rendered_from_the_committed_results():
    assert (ROOT / "BENCHMARKS.md").read_text() == _bench().render_markdown()


def test_committed_results_hold_both_sides_of_every_comparison():
    results = [p for p in (ROOT / "benchmarks" / "results").glob("*.json")
               if not p.name.startswith(("levers-", "loss-ablation-"))]
    assert results
    for path in results:
        res = json.loads(path.read_text())
        assert res["machine"]["versions"]["torch"]
        train = res["train"]
        assert train["same_real_tokens"]
        for side in ("baseline", "biotune"):
            assert train["sides"][side]["real_tokens_per_s"] > 0
            assert train["sides"][side]["heldout_answer_loss"] > 0
        assert res["eval"]["lm_eval"]["n"] == res["eval"]["biotune_likelihood"]["n"] == res["eval"]["questions"]
        memory = res["memory"]
        assert memory["ratio_qlora_lora_weights"] == round(memory["qlora"]["weight_bytes"]
                                                           / memory["lora"]["weight_bytes"], 3)
        assert memory["qlora_floor"]["floor_ratio"] <= memory["ratio_qlora_lora_weights"]
