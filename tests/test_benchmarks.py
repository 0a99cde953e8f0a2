"""The committed benchmark results and BENCHMARKS.md agree (the table is rendered from the JSON files, never
edited by hand). Speed itself is measured by benchmarks/run.py, not asserted here."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmarks_md_is_rendered_from_the_committed_results():
    assert (ROOT / "BENCHMARKS.md").read_text() == _bench().render_markdown()


def test_committed_results_hold_both_sides_of_every_comparison():
    results = [
        p
        for p in (ROOT / "benchmarks" / "results").glob("*.json")  # as BENCHMARKS.md renders them (--quick runs:
        # not committed)
        if not p.name.startswith(_bench().OWN_SECTIONS) and not p.stem.endswith("-quick")
    ]
    assert results
    for path in results:
        res = json.loads(path.read_text())
        assert res["machine"]["versions"]["torch"]
        train = res["train"]
        assert train["same_real_tokens"]
        for side in ("baseline", "biotune"):
            assert train["sides"][side]["real_tokens_per_s"] > 0
            assert train["sides"][side]["heldout_answer_loss"] > 0
        if "eval" not in res:  # a machine kind measured with --only peak,train
            assert "memory" not in res or res["memory"]
            continue
        assert res["eval"]["lm_eval"]["n"] == res["eval"]["biotune_likelihood"]["n"] == res["eval"]["questions"]
        memory = res["memory"]
        assert memory["ratio_qlora_lora_weights"] == round(
            memory["qlora"]["weight_bytes"] / memory["lora"]["weight_bytes"], 3
        )
        assert memory["qlora_floor"]["floor_ratio"] <= memory["ratio_qlora_lora_weights"]
        if "larger" in memory:  # LoRA vs QLoRA on a larger model of the same family
            big = memory["larger"]
            assert big["ratio_qlora_lora_weights"] == round(
                big["qlora"]["weight_bytes"] / big["lora"]["weight_bytes"], 3
            )
            assert big["qlora_floor"]["floor_ratio"] <= big["ratio_qlora_lora_weights"]
            assert big["lora"]["weight_bytes"] >= 2 * (
                big["qlora_floor"]["bf16_params"] + big["qlora_floor"]["quantized_params"]
            )


def test_qlora_floor_counts_every_parameter_once():
    """The floor the memory section reports: SmolLM2-135M's 134,515,008 parameters split into the linear layers
    (4-bit under QLoRA) and the rest (the tied embedding, counted once, and the norms: bf16)."""
    floor = _bench().qlora_floor()
    assert floor["quantized_params"] + floor["bf16_params"] == 134_515_008
    assert floor["bf16_params"] == 49_152 * 576 + (2 * 30 + 1) * 576  # embedding + 2 norms a layer + final norm
    assert floor["floor_ratio"] == round(
        (floor["bf16_params"] * 2 + floor["quantized_params"] / 2) / (134_515_008 * 2), 3
    )
    assert floor["floor_ratio"] > 0.4  # why the issue's <= 0.4x cannot be met on this model


def test_qlora_floor_of_the_larger_model():
    """The larger model the memory section adds (a LLaMA with SmolLM2-360M's shapes): 32 layers of 9,830,400
    linear parameters (q, o 960 x 960; k, v 960 x 320; gate, up, down 960 x 2560), the tied 49,152 x 960
    embedding and 65 norms in bf16 — a smaller embedding share, so its floor is below 0.4."""
    bench = _bench()
    floor = bench.qlora_floor(bench.LARGER["random_init"])
    assert floor["quantized_params"] == 32 * (2 * 960 * 960 + 2 * 960 * 320 + 3 * 960 * 2560)
    assert floor["bf16_params"] == 49_152 * 960 + 65 * 960
    assert floor["floor_ratio"] < 0.4


def test_each_machine_kind_has_its_own_results_file_and_mfu_uses_its_compute_dtype_peak():
    bench = _bench()
    info = {"cpu": "AMD EPYC", "cores": 2, "gpu": None, "avx512_bf16": False, "amx_bf16": False, "avx2": True}
    assert bench.machine_slug(info) == "amd-epyc-2c-avx2"
    assert bench.machine_slug({**info, "avx512_bf16": True}) == "amd-epyc-2c-avx512bf16"
    assert bench.machine_slug({**info, "gpu": "NVIDIA H200"}) == "nvidia-h200-2c"
    for path in (ROOT / "benchmarks" / "results").glob("*.json"):
        res = json.loads(path.read_text())
        if path.name.startswith(("levers-", "loss-ablation-")) or "train" not in res:
            continue
        assert path.stem.endswith("-" + bench.machine_kind(res["machine"]))
        for side in res["train"]["sides"].values():
            peak = "bf16" if side["dtype"] in ("bfloat16", "torch.bfloat16") else "fp32"
            expected = side[f"mfu_{peak}"]
            assert side.get("mfu", expected) == expected and expected < 1.0  # a real ceiling: under 100 %


def test_planner_check_results_are_consistent():
    """benchmarks/plan_check.py's results: peft's trainable count is the planner's for every family x method, and
    each error is what its measured and planned figures give."""
    paths = list((ROOT / "benchmarks" / "results").glob("plan-check-*.json"))
    assert paths
    for path in paths:
        res = json.loads(path.read_text())
        assert res["machine"]["versions"]["torch"] and res["flops"]
        for case, row in res["flops"].items():
            assert row["trainable_params"] == row["planned_trainable"], case
            for part in ("train_step", "generation"):
                if part in row:
                    r = row[part]
                    assert r["error_pct"] == round(
                        100 * (r["planned_flops"] - r["measured_flops"]) / r["measured_flops"], 2
                    )
        for case, row in res.get("runs", {}).items():
            m, p = row["measured"], row["planned"]
            assert p["peak_plus_baseline_bytes"] == p["peak_bytes"] + res["baseline_rss_bytes"]
            assert row["error_pct"]["peak_memory"] == round(
                100 * (p["peak_plus_baseline_bytes"] - m["peak_rss_bytes"]) / m["peak_rss_bytes"], 1
            ), case


def test_committed_plan_calibration_summaries_follow_from_their_cells():
    """benchmarks/plan_calibration.py's per-kind medians, recomputed from the cells it lists."""
    import math
    import statistics

    paths = list((ROOT / "benchmarks" / "results").glob("plan-calibration-*.json"))
    assert paths
    for path in paths:
        res = json.loads(path.read_text())
        err = lambda a, b: abs(math.log2(a / b))  # noqa: E731
        for key, summary in res["summary"].items():
            cells = [c for c in res["cells"] if f"{c['model']} {c['method']} {c['part']}" == key]
            learned = [c for c in cells if c["correction"]]
            assert summary["cells"] == len(cells) and summary["corrected_cells"] == len(learned)
            assert summary["plan_median_x"] == pytest.approx(
                statistics.median(c["took"] / c["planned"] for c in cells), abs=0.01
            )
            if learned:
                got = statistics.median(err(c["corrected"], c["took"]) for c in learned)
                assert summary["corrected_median_abs_log2"] == pytest.approx(got, abs=0.01)
        learned = [c for c in res["cells"] if c["correction"]]
        assert res["all"]["parts"] == len(learned)
        assert res["all"]["corrected_median_abs_log2"] < res["all"]["plan_median_abs_log2"]
