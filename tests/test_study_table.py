"""The study's table and the paper's findings as questions, on hand-made comparisons with known answers: which cell
is the row's best, tied with it, below it or not above the constant; the macro rows; the published columns and the
gaps; each question answered from the comparisons the report made (Holm) — and nothing asked where the study lacks
a side of it."""

from types import SimpleNamespace

import pandas as pd

from biotune.data import DATASETS, get_spec
from biotune.report.compare import config_label
from biotune.report.table import AT_CONSTANT, BEST, TIED, _missing_blurb_rows, findings, published_gaps, study_table

# (model, family, method, trains, trains_base): an LLM's adapter, its full fine-tuning, its few-shot, an encoder
CONFIGS = [
    ("llm", "causal", "lora", True, False),
    ("llm", "causal", "fft", True, True),
    ("llm", "causal", "few_shot", False, False),
    ("enc", "encoder", "fft", True, True),
]
# per dataset: test mean, std and compute per configuration (in CONFIGS order)
SCORES = {
    "gad": ([70.0, 66.0, 40.0, 69.0], [1.0, 4.0, 6.0, 0.5], [600, 900, 300, 60]),
    "hoc": ([80.0, 84.0, 20.0, 78.0], [0.5, 0.4, 3.0, 0.6], [800, 1000, 400, 90]),
}


def _label(i: int) -> str:
    return config_label(CONFIGS[i][0], CONFIGS[i][2])


def _pair(dataset, a, b, diff, significant):
    return {
        "dataset": dataset,
        "a": _label(a),
        "b": _label(b),
        "diff": diff,
        "ci_low": diff - 1,
        "ci_high": diff + 1,
        "significant": significant,
        "p_value": 0.001 if significant else 0.3,
    }


def _report() -> SimpleNamespace:
    df, agg = [], []
    for dataset, (means, stds, costs) in SCORES.items():
        task = get_spec(dataset).task
        for (model, family, method, trains, base), m, s, c in zip(CONFIGS, means, stds, costs):
            for seed in (0, 1, 2):
                df.append(
                    {
                        "dataset": dataset,
                        "task": task,
                        "model": model,
                        "method": method,
                        "seed": seed,
                        "score": m,
                        "trains": trains,
                        "trains_base": base,
                        "family": family,
                        "output_dir": "",
                    }
                )
            agg.append(
                {
                    "task": task,
                    "dataset": dataset,
                    "model": model,
                    "method": method,
                    "score_mean": m,
                    "score_std": s,
                    "seeds": 3,
                    "cost_seconds": c,
                    "trainable_params": 1e6 if trains else 0,
                }
            )
    sig = pd.DataFrame(
        [
            # gad: lora best; enc not told apart from it; fft and few-shot significantly below
            _pair("gad", 0, 3, 1.0, False),
            _pair("gad", 1, 0, -4.0, True),
            _pair("gad", 2, 0, -30.0, True),
            _pair("gad", 1, 3, -3.0, False),
            _pair("gad", 2, 3, -29.0, True),
            _pair("gad", 1, 2, 26.0, True),
            # hoc: fft best; lora not told apart; few-shot and enc below
            _pair("hoc", 1, 0, 4.0, False),
            _pair("hoc", 1, 2, 64.0, True),
            _pair("hoc", 1, 3, 6.0, True),
            _pair("hoc", 0, 3, 2.0, False),
            _pair("hoc", 0, 2, 60.0, True),
            _pair("hoc", 3, 2, 58.0, True),
            # gad against always '1' (68.96): only lora above it
            *(
                {**_pair("gad", i, 0, 0, False), "b": "constant '1'", "diff": d, "significant": sg}
                for i, d, sg in ((0, 1.0, True), (1, -3.0, False), (2, -29.0, True), (3, 0.04, False))
            ),
        ]
    )
    blurb = pd.DataFrame(
        [
            {"model": m, "method": me, "blurb_mean": 55.0 + i, "blurb_std": 1.0, "seeds": 3, "task_types": 2}
            for i, (m, _, me, _, _) in enumerate(CONFIGS)
        ]
    )
    return SimpleNamespace(
        df=pd.DataFrame(df),
        agg=pd.DataFrame(agg),
        sig=sig,
        blurb=blurb,
        blurb_name="macro score over 2 of BLURB's 6 task types",
        constants={"gad": (68.96, "1")},
        datasets={name: get_spec(name) for name in ("gad", "hoc")},
        metric_of={"gad": "micro F1", "hoc": "micro F1"},
        data_dir=None,
        subsets={},
    )


def test_each_cell_is_marked_against_its_rows_best_and_the_constant_answer():
    table = study_table(_report()).set_index("dataset")
    gad, hoc = table.loc["gad"], table.loc["hoc"]
    assert gad[_label(0)] == f"70.00 ± 1.00 {BEST}"  # the best, and significantly above always '1'
    assert gad[_label(3)] == f"69.00 ± 0.50 {TIED}{AT_CONSTANT}"  # tied with the best, not above the constant
    assert gad[_label(1)] == f"66.00 ± 4.00 {AT_CONSTANT}"  # significantly below the best
    assert gad[_label(2)] == f"40.00 ± 6.00 {AT_CONSTANT}"  # significantly below the best and the constant
    assert gad["best constant"] == "68.96 (always '1')" and hoc["best constant"] == "–"
    assert (hoc[_label(1)], hoc[_label(0)], hoc[_label(3)]) == (
        f"84.00 ± 0.40 {BEST}",
        f"80.00 ± 0.50 {TIED}",
        "78.00 ± 0.60",
    )
    # the published column: PubMedBERT's BLURB-paper scores, and their macro over this table's task types
    assert (gad["PubMedBERT-base (published)"], hoc["PubMedBERT-base (published)"]) == ("82.34", "82.32")
    macro = table.loc["macro score over 2 of BLURB's 6 task types"]
    assert macro["PubMedBERT-base (published)"] == f"{(82.34 + 82.32) / 2:.2f}"
    assert macro[_label(2)] == "57.00 ± 1.00"
    assert table.loc["compute", _label(3)] == "2.5 min"  # 60 + 90 s: one run of each dataset
    assert list(table.index[:2]) == ["gad", "hoc"]  # two datasets of 13: no rows for the BLURB datasets left out


def test_a_blurb_study_lists_the_blurb_datasets_it_leaves_out_and_why(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("BIOTUNE_DATA", str(data_dir))
    names = ["bc5-chem", "bc5-disease", "ncbi-disease", "bc2gm", "jnlpba", "chemprot", "ddi", "gad"]
    rows = _missing_blurb_rows({n: get_spec(n) for n in names}, None)
    by_name = {r["dataset"]: r for r in rows}
    assert set(by_name) == {n for n, s in DATASETS.items() if s.blurb} - set(names)
    # ../shared has no EBM PICO training split (data/blurb/SOURCES.md); the others are simply not in the study
    assert by_name["ebm-pico"]["metric"] == "not in this study: no training split at the data location"
    assert by_name["hoc"]["metric"] == "not in this study"
    assert by_name["ebm-pico"]["published"] == {"PubMedBERT-base": 73.38}
    assert _missing_blurb_rows({n: get_spec(n) for n in names[:6]}, None) == []  # 6 of 13: not a BLURB study
    # a study with its own data location that has EBM PICO's training split: only "not in this study"
    own = tmp_path / "blurb"
    train = own / get_spec("ebm-pico").files["train"]
    train.parent.mkdir(parents=True)
    train.write_text("")
    rows = {r["dataset"]: r for r in _missing_blurb_rows({n: get_spec(n) for n in names}, str(own))}
    assert rows["ebm-pico"]["metric"] == "not in this study"


def test_the_gap_to_a_published_score_names_datasets_far_below_the_others():
    d = _report()
    lines = published_gaps(d)
    assert lines[0] == (
        "llm / lora against PubMedBERT-base (published): -7.33 on the median of 2 datasets, from -12.34 (gad) to "
        "-2.32 (hoc)."
    )
    # four datasets, one 20 points below the others: named
    rows = []
    for ds, gap in (("gad", -10), ("hoc", -9), ("ncbi-disease", -11), ("bioasq", -31)):
        rows.append(
            {
                "task": get_spec(ds).task,
                "dataset": ds,
                "model": "enc",
                "method": "fft",
                "score_mean": get_spec(ds).published["PubMedBERT-base"] + gap,
            }
        )
    d.agg = pd.DataFrame(rows)
    d.df = pd.DataFrame({"dataset": [r["dataset"] for r in rows], "output_dir": ""})
    d.datasets = {r["dataset"]: get_spec(r["dataset"]) for r in rows}
    (line,) = published_gaps(d)
    assert line.endswith("; more than 10 points below that median: bioasq (-31.00).") and "-10.50 on the median" in line


def test_a_dataset_scored_on_a_test_subset_says_so_and_has_no_gap_to_a_published_score():
    """A fixed part of a test split (eval.limit) is named in its row, and its score is never set against a published
    one (the issue's 'no BLURB-comparable claim for that cell')."""
    d = _report()
    d.subsets = {"gad": (100, 534)}
    table = study_table(d).set_index("dataset")
    assert table.loc["gad", "metric"] == (
        "micro F1; test: a fixed 100 of 534 examples, not comparable with a published score"
    )
    assert table.loc["hoc", "metric"] == "micro F1"
    lines = published_gaps(d)
    assert lines[0] == "llm / lora against PubMedBERT-base (published): -2.32 on hoc."
    assert lines[-1] == "No gap for gad: scored on a fixed subset of the test split, not the whole split."


def test_the_papers_findings_are_answered_from_the_comparisons():
    lines = findings(_report())
    assert len(lines) == 4
    # the best adapter against the best other configuration: gad lora is the best (vs enc: not told apart); hoc
    # lora vs fft: not told apart
    assert "PEFT significantly better on 0, worse on 0, not told apart on 2 of 2 comparisons (gad, hoc)" in lines[0]
    # FFT against the same LLM's best adapter: worse on gad (Holm), not told apart on hoc; compute 900/600, 1000/800
    assert "full fine-tuning significantly better on 0, worse on 1, not told apart on 1 of 2" in lines[1]
    assert "median difference +0.00" in lines[1] and "compute per run 1.4x" in lines[1]
    # the best fine-tuned LLM against the encoder: gad lora vs enc (not told apart), hoc fft vs enc (better)
    assert "the LLM significantly better on 1, worse on 0, not told apart on 1 of 2" in lines[2]
    # seed std of the fine-tuned LLM's configurations against few-shot's: (1+4)/2, (0.5+0.4)/2 vs 6, 3
    assert "fine-tuned LLM configurations 1.48 against in-context 4.50 (mean over 2 datasets)" in lines[3]
    assert "varies less on 2 of them" in lines[3] and "within x0.52 to x6.28" in lines[3]


def test_no_question_is_asked_where_the_study_lacks_a_side_of_it():
    d = _report()
    keep = d.agg.model == "enc"
    d.agg, d.df = d.agg[keep], d.df[d.df.model == "enc"]
    assert findings(d) == []


def test_a_dataset_of_the_study_not_finished_yet_has_its_row_saying_so():
    d = _report()
    d.datasets = {name: get_spec(name) for name in ("gad", "ncbi-disease", "hoc")}
    table = study_table(d)
    assert list(table.dataset[:3]) == ["gad", "ncbi-disease", "hoc"]  # the study's order, by task type
    ncbi = table.set_index("dataset").loc["ncbi-disease"]
    assert ncbi["metric"] == "not finished yet" and ncbi[_label(0)] == "–"
    assert ncbi["PubMedBERT-base (published)"] == "87.82"
    # the published macro covers the datasets with results only: the same ones as every configuration's
    macro = table.set_index("dataset").loc["macro score over 2 of BLURB's 6 task types"]
    assert macro["PubMedBERT-base (published)"] == f"{(82.34 + 82.32) / 2:.2f}"
    # one dataset: its gap, no median
    d.agg = d.agg[d.agg.dataset == "gad"]
    assert published_gaps(d)[0] == "llm / lora against PubMedBERT-base (published): -12.34 on gad."


def test_the_blurb_datasets_left_out_sit_where_blurb_lists_their_task_type(data_dir, monkeypatch):
    """A BLURB study without EBM PICO, BIOSSES and the QA sets: each left-out row after the study's task type that
    BLURB lists before its own (PICO after NER, sentence similarity after relation extraction, QA at the end)."""
    monkeypatch.setenv("BIOTUNE_DATA", str(data_dir))
    d = _report()
    names = ["bc5-chem", "bc5-disease", "ncbi-disease", "bc2gm", "jnlpba", "chemprot", "ddi", "gad", "hoc"]
    d.datasets = {name: get_spec(name) for name in names}
    rows = list(study_table(d).dataset)
    want = [*names[:5], "ebm-pico", "chemprot", "ddi", "gad", "biosses", "hoc", "pubmedqa", "bioasq"]
    assert rows[: len(want)] == want
