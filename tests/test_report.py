"""The report: bootstrap on hand-made cases with known answers, Pareto fronts, and a report built from a real
small study whose numbers equal the store's."""

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

from biotune.report import stats
from biotune.report.build import build_report
from biotune.study.grid import load_study
from biotune.study.runner import run_study
from biotune.study.store import Store
from conftest import TINY_BERT_INIT


def _accuracy(correct):
    correct = np.asarray(correct, dtype=float)
    return lambda idx: 100 * correct[np.asarray(idx)].mean()


def test_bootstrap_identical_systems_differ_by_nothing():
    a = _accuracy([1, 0, 1, 1, 0] * 20)
    r = stats.paired_bootstrap(a, a, 100, samples=500)
    assert r == {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "p_value": 1.0, "significant": False}


def test_bootstrap_a_system_right_everywhere_the_other_is_wrong():
    r = stats.paired_bootstrap(_accuracy([1] * 50), _accuracy([0] * 50), 50, samples=500)
    assert (r["diff"], r["ci_low"], r["ci_high"], r["p_value"], r["significant"]) == (100.0, 100.0, 100.0, 0.0, True)


def test_bootstrap_interval_matches_the_normal_approximation():
    # A right on all 400, B right on half: the per-example difference is 1 or 0 with p = 1/2, so the resampled
    # mean difference has sd 0.5 / sqrt(400) = 0.025 -> 95% interval 50 +- 4.9 points
    rng = np.random.default_rng(1)
    b = rng.permutation([1] * 200 + [0] * 200)
    r = stats.paired_bootstrap(_accuracy([1] * 400), _accuracy(b), 400, samples=4000, seed=3)
    assert r["diff"] == pytest.approx(50.0)
    assert r["ci_low"] == pytest.approx(50 - 4.9, abs=0.8) and r["ci_high"] == pytest.approx(50 + 4.9, abs=0.8)
    assert r["significant"] and r["p_value"] == 0.0


def test_bootstrap_no_real_difference_is_not_significant():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    r = stats.paired_bootstrap(_accuracy(a), _accuracy(b), 200, samples=2000)
    assert r["ci_low"] < 0 < r["ci_high"] or r["diff"] == 0
    assert not r["significant"] and r["p_value"] > 0.05


def test_pareto_front():
    #        cost, score
    pts = [(1, 50), (2, 40), (3, 70), (4, 70), (5, 90), (0.5, 10)]
    assert sorted(stats.pareto_front(pts)) == [0, 2, 4, 5]


def test_a_tables_number_and_interval_stay_on_one_line_and_the_words_after_them_wrap():
    """The answer table's last column ran past a 1,280-pixel page: "+60.19 [54.17, 66.21] * vs always 'DDI-effect'"
    was kept on one line whole. Its number and interval still are; the label after them wraps."""
    import pandas as pd

    from biotune.report.render import _table

    df = pd.DataFrame(
        {"score": ["85.53 [85.00, 86.06]"], "vs best constant": ["+60.19 [54.17, 66.21] * vs always 'DDI-effect'"]}
    )
    html_table, md = _table(df)
    cells = re.findall(r"<td[^>]*>.*?</td>", html_table)
    assert cells == [
        "<td class=n>85.53 [85.00, 86.06]</td>",
        "<td><span class=n>+60.19 [54.17, 66.21]</span> * vs always &#x27;DDI-effect&#x27;</td>",
    ]
    assert "| 85.53 [85.00, 86.06] | +60.19 [54.17, 66.21] * vs always 'DDI-effect' |" in md  # Markdown as it was


def test_recommendation_ties_name_the_cheaper_pair_and_list_the_others():
    import pandas as pd

    agg = pd.DataFrame(
        [
            {
                "task": "qa",
                "model": "m",
                "method": "fft",
                "score_mean": 50.0,
                "dev_mean": 52.0,
                "peak_memory_mb": 4000,
                "cost_seconds": 90,
            },
            {
                "task": "qa",
                "model": "m",
                "method": "lora",
                "score_mean": 50.0,
                "dev_mean": 52.0,
                "peak_memory_mb": 3000,
                "cost_seconds": 60,
            },
            {
                "task": "qa",
                "model": "m",
                "method": "zero_shot",
                "score_mean": 40.0,
                "dev_mean": 41.0,
                "peak_memory_mb": 1000,
                "cost_seconds": None,
            },
        ]
    )
    rec = stats.recommendations(agg, [2000, float("inf")], [float("inf")]).set_index("memory_budget_mb")
    assert (rec.loc[float("inf"), "method"], rec.loc[float("inf"), "tied_with"]) == ("lora", ["m / fft"])
    assert (rec.loc[2000, "method"], rec.loc[2000, "tied_with"]) == ("zero_shot", [])


def test_recommendation_is_decided_on_dev_never_on_test():
    import pandas as pd

    agg = pd.DataFrame(
        [  # fft is better on test, lora on dev: lora is recommended, its test score shown
            {
                "task": "ner",
                "model": "m",
                "method": "fft",
                "score_mean": 70.0,
                "dev_mean": 60.0,
                "peak_memory_mb": 1,
                "cost_seconds": 10,
            },
            {
                "task": "ner",
                "model": "m",
                "method": "lora",
                "score_mean": 65.0,
                "dev_mean": 62.0,
                "peak_memory_mb": 1,
                "cost_seconds": 10,
            },
            {
                "task": "ner",
                "model": "m",
                "method": "few_shot",
                "score_mean": 90.0,
                "dev_mean": float("nan"),
                "peak_memory_mb": 1,
                "cost_seconds": 0,
            },  # no dev score: never recommended
        ]
    )
    rec = stats.recommendations(agg, [float("inf")], [float("inf")]).iloc[0]
    assert (rec.method, rec.dev, rec.score) == ("lora", 62.0, 65.0)
    # a search's cost counts against the time budget
    cheap = stats.recommendations(agg.assign(cost_seconds=[10, 500, 0]), [float("inf")], [100]).iloc[0]
    assert cheap.method == "fft"


MEASURE = """<script>
document.querySelectorAll("details").forEach(d => { d.open = true; });
const page = document.documentElement;
const wide = [...document.querySelectorAll("table")].filter(
  t => !t.closest(".scroll") && t.getBoundingClientRect().right > page.clientWidth + 1);
document.body.setAttribute("data-page-overflow", String(page.scrollWidth - page.clientWidth));
document.body.setAttribute("data-wide-tables", String(wide.length));
</script>"""


def _check_fits_1280_px(report: Path, tmp_path: Path) -> None:
    """The page, every folded section opened, in headless Chromium 1,280 px wide: no horizontal scrolling of the
    page, and no table wider than the page outside a scrolling box (the long tables scroll in their own)."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium here to lay the page out")
    measured = tmp_path / "measured.html"
    measured.write_text(report.read_text().replace("</body>", MEASURE + "</body>"))
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,800",
            "--dump-dom",
            measured.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    overflow = re.search(r'data-page-overflow="(-?\d+)"', dom)
    assert overflow, dom[-500:]
    assert int(overflow.group(1)) <= 0, "the page scrolls sideways at 1,280 px"
    assert re.search(r'data-wide-tables="(\d+)"', dom).group(1) == "0", "a table is cut at 1,280 px"


def test_report_from_a_real_small_study_matches_the_store(tmp_path, data_dir):
    import yaml

    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        yaml.safe_dump(
            {
                "name": "r",
                "datasets": ["gad", "biosses"],
                "output_dir": str(tmp_path / "study"),
                "data_dir": str(data_dir),
                "models": [
                    {
                        "name": "tiny-bert",
                        "family": "encoder",
                        "path": "minilm",
                        "random_init": TINY_BERT_INIT,
                    }
                ],
                "methods": ["lora", "fft"],
                "seeds": [0, 1],
                "defaults": {
                    "training": {
                        "max_steps": 3,
                        "batch_size": 4,
                        "train_limit": 8,
                        "dev_limit": 4,
                        "max_length": 128,
                        "learning_rate": 0.002,
                    },
                    "eval": {"limit": 12},
                },
            }
        )
    )
    study, cells, _ = load_study(study_file)
    assert run_study(study, cells)["ran"] == 8
    result = build_report(
        study.store_url, study.name, study.out, samples=200, identities={c.key: c.identity_hash for c in cells}
    )
    rows = Store(study.store_url).rows("r", "done")
    # per-dataset means and stds are the store's scores, aggregated over the seeds
    agg = result["aggregate"]
    for (dataset, method), want in _by(rows).items():
        got = agg[(agg.dataset == dataset) & (agg.method == method)].iloc[0]
        assert got.score_mean == pytest.approx(np.mean(want))
        assert got.score_std == pytest.approx(np.std(want, ddof=1))
    # BLURB per (model, method): per seed the mean over the two task types, then the mean over seeds
    blurb = result["blurb"].set_index("method")
    for method in ("lora", "fft"):
        per_seed = [np.mean([r["score"] for r in rows if r["method"] == method and r["seed"] == s]) for s in (0, 1)]
        assert blurb.loc[method, "blurb_mean"] == pytest.approx(np.mean(per_seed))
    # the same numbers are printed in the page and the Markdown, and the page is self-contained
    page = (study.out / "report.html").read_text()
    md = (study.out / "report.md").read_text()
    for want in _by(rows).values():
        cell = f"{np.mean(want):.2f} ± {np.std(want, ddof=1):.2f}"
        assert cell in page and cell in md
    # the study's table, on the first screen: each cell of each dataset's row, PubMedBERT's published score beside
    table = md.split("## The study's table")[1].split("\n## ")[0]
    for (dataset, _), want in _by(rows).items():
        row = next(line for line in table.splitlines() if line.startswith(f"| {table_task(dataset)} | {dataset} |"))
        assert f"{np.mean(want):.2f} ± {np.std(want, ddof=1):.2f}" in row
        assert {"gad": "| 82.34 |", "biosses": "| 92.30 |"}[dataset] in row
        # 12 test examples of each split (eval.limit): named in the row, and no BLURB-comparable claim
        total = {"gad": 534, "biosses": 20}[dataset]
        assert f"test: a fixed 12 of {total} examples, not comparable with a published score" in row
    assert "gad 12 of 534 (a fixed subset), biosses 12 of 20 (a fixed subset)" in md
    assert (
        "of BLURB's 6 task types (test subsets on 2 datasets: not BLURB-comparable)" in md
        and "No gap for gad, biosses" in md
    )
    assert "The study's table" not in md.split("<details>")[-1]  # shown, not folded
    # the heat map of the one model, score against compute per dataset (2), learning curves per dataset (2), the
    # macro score against each of three costs
    assert page.count("<svg") == 8
    # it leads with the answer, decided on dev; the long tables are folded
    assert page.index("The answer") < page.index("What this ran on") < page.index("<svg") < page.index("<details>")
    _check_structure(page, md, result)
    assert set(result["answer"]["task"]) == {"relation", "similarity"}
    assert not re.search(r"""(src|href)=["']https?://""", page)
    sig = result["significance"]
    # lora vs fft on each dataset over both seeds, and on GAD each against always answering the better label
    assert sorted(zip(sig.dataset, sig.a, sig.b)) == [
        ("biosses", "tiny-bert / lora", "tiny-bert / fft"),
        ("gad", "tiny-bert / fft", "constant '1'"),
        ("gad", "tiny-bert / lora", "constant '1'"),
        ("gad", "tiny-bert / lora", "tiny-bert / fft"),
    ]
    assert (sig.seeds == 2).all() and (sig.p_holm >= sig.p_value).all()
    # each cell kept the dev predictions its dev score was computed from (the kept checkpoint's), and no more
    from biotune.data import get_spec
    from biotune.io import read_jsonl
    from biotune.tasks import task_for

    for r in rows:
        dev = read_jsonl(Path(r["output_dir"]) / "dev_predictions.jsonl")
        task = task_for(get_spec(r["dataset"]))
        got = task.score_gold([x["gold"] for x in dev], [x["prediction"] for x in dev], [x["id"] for x in dev])
        assert len(dev) == 4 and got["score"] == pytest.approx(r["dev_score"], abs=1e-9)
        assert not (Path(r["output_dir"]) / "dev_steps").exists()
    # the answer names one configuration per dataset, recommended on dev, and says what dev could decide
    assert set(result["decisions"]) == {"gad", "biosses"}
    assert all(d["sentence"] in md for d in result["decisions"].values())
    assert set(result["recommendations"].task) == {"relation", "similarity"}
    # each configuration's training budget is stated beside its score
    assert set(agg.budget) == {"3 steps of 4 examples"} and "3 steps of 4 examples" in md
    # training redone after a kill is listed apart, never in a cost: none here; one cell's, once it has some
    assert (agg.lost_seconds == 0).all() and "redone after interruptions" not in page
    import sqlite3

    row = next(r for r in rows if r["dataset"] == "gad" and r["method"] == "lora")
    with sqlite3.connect(study.store_url.removeprefix("sqlite:///")) as db:
        db.execute(
            "UPDATE results SET resources = ? WHERE config_hash = ? AND seed = ?",
            (json.dumps({**json.loads(row["resources"]), "lost_seconds": 12.5}), row["config_hash"], row["seed"]),
        )
    again = build_report(
        study.store_url, study.name, study.out, samples=200, identities={c.key: c.identity_hash for c in cells}
    )
    lora = again["aggregate"].set_index(["dataset", "method"]).loc[("gad", "lora")]
    assert lora.lost_seconds == 12.5 and lora.cost_seconds == pytest.approx(
        agg.set_index(["dataset", "method"]).loc[("gad", "lora")].cost_seconds
    )
    assert "12 s of training redone after interruptions (1 cell), not counted" in (study.out / "report.md").read_text()
    # last, as it skips where no Chromium is installed: the page laid out 1,280 px wide
    _check_fits_1280_px(study.out / "report.html", tmp_path)


def _svg_texts(svg: str) -> list[tuple[float, float, str, float, str]]:
    """(x, y, anchor, font size, text) of every text of a figure (matplotlib writes text as <text> here)."""
    out = []
    for attrs, text in re.findall(r"<text([^>]*)>([^<]*)</text>", svg):
        at = re.search(r'\bx="([-0-9.e]+)" y="([-0-9.e]+)"', attrs) or re.search(
            r"translate\(([-0-9.e]+) ([-0-9.e]+)\)", attrs
        )  # a rotated label is placed by its transform
        x, y = float(at.group(1)), float(at.group(2))
        anchor = re.search(r"text-anchor: (\w+)", attrs)
        size = float(re.search(r"font-size: ([0-9.]+)px", attrs).group(1))
        out.append((x, y, anchor.group(1) if anchor else "start", size, text))
    return out


def _check_structure(page: str, md: str, result: dict) -> None:
    """What a reader needs of the report's structure: its sections (in the Markdown too), a legend on every
    figure but the heat maps (a colour bar there), no text outside a figure's box, one colour per method across
    figures, and the examples where the recommendation and the best alternative disagree."""
    from biotune.report.figures import method_colour

    for title in (
        "The answer",
        "What this ran on",
        "The study's table",
        "Score per dataset and method (test)",
        "Score against compute, per dataset",
        "Learning curves",
        "against each cost",
        "Best model/method per task type under budgets",
    ):
        assert html.escape(title) in page and title in md, title
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    for svg in svgs:
        width, height = (float(re.search(rf'{k}="([0-9.]+)pt"', svg).group(1)) for k in ("width", "height"))
        texts = _svg_texts(svg)
        assert texts
        for x, y, anchor, size, text in texts:
            end = x + (0.6 * size * len(text) if anchor == "start" else 0)  # DejaVu Sans: about 0.6 em a character
            assert 0 <= x <= width and 0 <= y <= height + 1 and end <= width + 12, (text, x, y, width, height)
        words = {t for *_, t in texts}
        if "test score (×100)" in words:  # a heat map: its colour bar says what the colours are
            continue
        assert {"lora", "fft"} <= words, "a legend naming the methods"
        assert "tiny-bert" in words or "range over seeds" in words
    # a method's colour is the same in every figure: lora's in the cost plots and the macro-score plots
    lora, fft = method_colour("lora"), method_colour("fft")
    assert lora != fft
    with_lora = [svg for svg in svgs if lora in svg]
    assert len(with_lora) >= 5 and all(fft in svg for svg in with_lora)
    # a point's full name is its hover text
    assert "<title>tiny-bert / lora: " in page
    # where the recommended configuration and the best alternative answer differently, those examples are listed
    for dataset, x in result["disagreements"].items():
        assert f"answer differently on {dataset}" in page
        if x["differ"]:
            assert len(x["rows"]) == min(x["differ"], 20) and x["rows"]["input"].str.len().min() > 0
            first = x["rows"].iloc[0]
            assert html.escape(str(first["input"])) in page


def table_task(dataset: str) -> str:
    from biotune.data import get_spec

    return get_spec(dataset).task


def _by(rows):
    out = {}
    for r in rows:
        out.setdefault((r["dataset"], r["method"]), []).append(r["score"])
    return out


def test_the_best_constant_answer_is_scored_on_the_examples_every_run_predicted(tmp_path):
    """GAD's F1 of the positive class: always '1' on 3 positives of 4 is 2*3/(4+3) = 85.71; always '0': 0."""
    import json

    import pandas as pd

    from biotune.report.compare import constant_baselines

    golds = {"a": "1", "b": "1", "c": "0", "d": "1", "e": "0"}
    for run, ids in (("r1", "abcde"), ("r2", "abcd")):  # e: predicted by one run only, left out
        (tmp_path / run).mkdir()
        (tmp_path / run / "predictions.jsonl").write_text(
            "".join(json.dumps({"id": i, "gold": golds[i], "prediction": "0"}) + "\n" for i in ids)
        )
    df = pd.DataFrame({"dataset": ["gad", "gad"], "output_dir": [str(tmp_path / "r1"), str(tmp_path / "r2")]})
    score, label = constant_baselines(df)["gad"]
    assert label == "1" and abs(score - 100 * 6 / 7) < 1e-9
