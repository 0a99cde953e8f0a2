"""Model selection on dev, never on test: the kept checkpoint by the dev metric (not the dev loss) where the two
disagree, early stopping on the dev metric, and a study's `search:` choosing the best dev-metric candidate and
running it on every seed."""

import json
import re

import pytest
import torch

from biotune.errors import BiotuneError
from biotune.study.grid import load_study
from biotune.study.runner import cell_states, run_study
from biotune.study.search import SearchGroup, SearchRef, at_edge, chosen, summary
from biotune.study.store import Store
from biotune.train import Experiment
from conftest import cli_here
from test_identity import TINY, experiment
from test_study import write_study


def _training(tmp_path, name, scores, **training):
    """A tiny LoRA run evaluated on dev every 2 steps whose dev *metric* follows `scores` (a constructed dev
    scorer standing in for generation), while its dev *loss* is what training really gives."""
    t = {
        **TINY["training"],
        "max_steps": 2 * len(scores),
        "eval_steps": 2,
        "save_steps": 2,
        "save_total_limit": 10,
        "learning_rate": 0.01,
        "train_limit": 16,
        "dev_limit": 4,
        **training,
    }
    exp = Experiment(experiment(tmp_path, name, training=t), progress=False)
    exp.setup()
    sequence = iter(scores)
    if exp.trainer.dev_scorer is not None:
        exp.trainer.dev_scorer = lambda: {"score": next(sequence), "n": 4}
    exp.train()
    return exp


def test_the_kept_checkpoint_is_the_best_dev_metric_where_dev_loss_disagrees(tmp_path):
    exp = _training(tmp_path, "metric", [10.0, 90.0, 20.0, 30.0])
    info = exp.train_info
    losses = [loss for _, loss in info["dev_loss_curve"]]
    assert losses == sorted(losses, reverse=True)  # the dev loss falls all along: it would keep the last one
    assert [s for _, s in info["dev_score_curve"]] == [10.0, 90.0, 20.0, 30.0]
    assert info["best_checkpoint"].endswith("checkpoint-4") and info["best_dev_score"] == 90.0
    from safetensors.torch import load_file

    # the model trained on is the one of checkpoint 4 (load_best_model_at_end), not the last step's
    state = exp.model.state_dict()
    saved = load_file(str(tmp_path / "metric" / "checkpoints" / "checkpoint-4" / "adapter_model.safetensors"))
    assert saved and all(torch.equal(state[k.replace(".weight", ".default.weight")], v) for k, v in saved.items())
    loss = _training(tmp_path, "loss", [10.0, 90.0, 20.0, 30.0], select_by="loss").train_info
    assert loss["best_checkpoint"].endswith("checkpoint-8") and loss["dev_score_curve"] == []


def test_eval_steps_without_save_steps_saves_at_the_evaluations(tmp_path):
    """`eval_steps` alone (no `save_steps`): checkpoints are saved where the dev evaluations choose among them, not
    at biotune's default of every quarter of the run (which the Trainer refuses when it is not a multiple)."""
    t = {**TINY["training"], "max_steps": 6, "eval_steps": 3, "train_limit": 8, "dev_limit": 2}
    t.pop("save_steps", None)
    exp = Experiment(experiment(tmp_path, "evals", training=t), progress=False)
    exp.setup()
    assert exp.trainer.args.save_steps == 3 and exp.trainer.args.eval_steps == 3


def test_early_stopping_on_the_dev_metric(tmp_path):
    info = _training(tmp_path, "early", [50.0, 40.0, 45.0, 60.0, 70.0, 80.0], early_stopping_patience=2).train_info
    # no better dev score at the 2nd and 3rd evaluation: stopped at step 6 of 12
    assert info["steps"] == 6 and info["stopped_early_at"] == 6
    assert info["best_checkpoint"].endswith("checkpoint-2")


def test_search_chooses_by_dev_score_not_by_dev_loss():
    cells = [
        type(
            "C",
            (),
            {
                "key": ("gad", "m", "lora", 0),
                "identity_hash": h,
                "search": SearchRef(("gad", "m", "lora"), {"training.learning_rate": lr}, i),
            },
        )()
        for i, (h, lr) in enumerate([("a", 1e-4), ("b", 1e-3), ("c", 1e-2)])
    ]
    group = SearchGroup(("gad", "m", "lora"), [1, 2], 0, cells)
    # candidate a has the lowest dev loss, candidate b the best dev score
    rows = [
        {"config_hash": h, "dev_score": d, "resources": json.dumps({"best_dev_loss": loss})}
        for h, d, loss in (("a", 40.0, 0.1), ("b", 70.0, 0.5), ("c", 55.0, 0.9))
    ]
    assert chosen(group, {("gad", "m", "lora", 0): rows}) == (1, [40.0, 70.0, 55.0])
    assert chosen(group, {("gad", "m", "lora", 0): rows[:2]})[0] is None  # a candidate not finished: no choice


def test_a_choice_at_the_end_of_the_range_tried_is_marked():
    lrs = [{"training.learning_rate": v} for v in (1e-4, 3e-4, 1e-3)]
    assert at_edge(lrs[2], lrs) == ["learning_rate: the highest tried"]
    assert at_edge(lrs[0], lrs) == ["learning_rate: the lowest tried"]
    assert at_edge(lrs[1], lrs) == []
    # two values: every choice is an end, nothing to say; names and booleans are not ranges
    assert at_edge(lrs[0], lrs[:2]) == []
    grid = [{"method.params.r": r, "x.name": n} for r in (4, 8, 16) for n in ("a", "b", "c")]
    assert at_edge({"method.params.r": 8, "x.name": "c"}, grid) == []
    assert at_edge({"method.params.r": 16, "x.name": "a"}, grid) == ["r: the highest tried"]
    # the summary marks the chosen candidate only
    cells = [
        type(
            "C",
            (),
            {"key": ("gad", "m", "lora", 0), "identity_hash": h, "search": SearchRef(("gad", "m", "lora"), lr, i)},
        )()
        for i, (h, lr) in enumerate(zip("abc", lrs))
    ]
    rows = [{"config_hash": h, "dev_score": d, "resources": "{}"} for h, d in zip("abc", (40.0, 50.0, 70.0))]
    out = summary([SearchGroup(("gad", "m", "lora"), [1], 0, cells)], {("gad", "m", "lora", 0): rows})
    assert [r["edge"] for r in out] == [[], [], ["learning_rate: the highest tried"]]


def test_the_answer_names_each_dataset_s_own_search_choice():
    """Two datasets of one task type, each searched: each row shows the value chosen on its own dev set."""
    import pandas as pd

    from biotune.report.verdict import answer

    agg = pd.DataFrame(
        [
            {
                "task": "ner",
                "dataset": ds,
                "model": "m",
                "method": "lora",
                "dev_mean": dev,
                "score_mean": test,
                "seeds": 3,
            }
            for ds, dev, test in (("a", 60.0, 58.0), ("b", 50.0, 49.0))
        ]
    )
    decisions = {ds: {"task": "ner", "recommended": "m / lora"} for ds in ("a", "b")}
    search = [
        {
            "dataset": ds,
            "model": "m",
            "method": "lora",
            "candidate": f"learning_rate={lr}",
            "chosen": True,
            "values": {"training.learning_rate": lr},
            "edge": edge,
        }
        for ds, lr, edge in (("a", 0.0001, []), ("b", 0.001, ["learning_rate: the highest tried"]))
    ]
    sig = pd.DataFrame(columns=["dataset", "a", "b", "diff", "ci_low", "ci_high", "significant"])
    intervals = pd.DataFrame(columns=["dataset", "config", "score", "ci_low", "ci_high"])
    lead, verdicts = answer(agg, decisions, sig, intervals, search)
    assert "its search chose learning_rate=0.001 (the highest tried)" in verdicts["b"]
    assert lead.set_index("dataset")["search chose"].to_dict() == {
        "a": "learning_rate=0.0001",
        "b": "learning_rate=0.001 (the highest tried)",
    }


def test_study_search_runs_candidates_on_a_search_seed_then_the_best_anew_on_every_reported_seed(tmp_path, data_dir):
    path = write_study(
        tmp_path,
        methods=["lora", "zero_shot"],
        seeds=[0, 1],
        data_dir=str(data_dir),
        search={
            "strategy": "grid",
            "grid": {"training.learning_rate": [0.0001, 0.05]},
            "method": {"lora": {"method.params.r": [2, 4]}},
        },
    )
    study, cells, _ = load_study(path)
    # 4 lora candidates (2 rates x 2 ranks) on the search seed, 2 (one above the highest reported seed);
    # zero-shot trains nothing: no search
    assert len(study.groups) == 1 and len(cells) == 5
    assert study.groups[0].search_seed == 2 and {c.seed for c in cells if c.search} == {2}
    assert sorted(c.search.label() for c in cells if c.search) == [
        "learning_rate=0.0001, r=2",
        "learning_rate=0.0001, r=4",
        "learning_rate=0.05, r=2",
        "learning_rate=0.05, r=4",
    ]
    tally = run_study(study, cells)
    assert tally["ran"] == 7 and tally["failed"] == 0  # 4 candidates + zero-shot + the chosen one on seeds 0 and 1
    done = Store(study.store_url).done("t")
    scores = [
        next(r["dev_score"] for r in done[c.key] if r["config_hash"] == c.identity_hash)
        for c in study.groups[0].candidates
    ]
    best = max(range(4), key=lambda i: (scores[i], -i))
    finals = tally["final_cells"]
    lora = sorted((c for c in finals if c.method == "lora"), key=lambda c: c.seed)
    # the reported seeds never include a search run: both are fresh runs of the chosen candidate's values
    assert [c.seed for c in lora] == [0, 1] and all(c.search.final for c in lora)
    search_runs = {c.identity_hash for c in study.groups[0].candidates}
    assert not search_runs & {c.identity_hash for c in lora}
    for c in lora:
        assert c.experiment.method.params["r"] == study.groups[0].candidates[best].experiment.method.params["r"]
        assert c.experiment.training.learning_rate == study.groups[0].candidates[best].experiment.training.learning_rate
    # a rerun has nothing to do, and the report shows the final cells only, with the search's candidates apart
    again = run_study(study, cells)
    assert again["ran"] == 0 and again["already_done"] == 7
    # given seed 2 as well, which the search ran its candidates on, the study refuses: the chosen value's run on
    # seed 2 is a finished candidate's, which would be reported as it is
    grid = {"training.learning_rate": [0.0001, 0.05]}
    search = {"strategy": "grid", "grid": grid, "method": {"lora": {"method.params.r": [2, 4]}}}
    more = write_study(tmp_path, methods=["lora", "zero_shot"], seeds=[0, 1, 2], data_dir=str(data_dir), search=search)
    assert "refused when run: search gad/" in cli_here("study", str(more), "--dry-run").stdout
    with pytest.raises(BiotuneError, match=r"seed 2 is a reported seed.*`search.seed: 2`"):
        run_study(*load_study(more)[:2])
    from biotune.cli import _write_report

    _write_report(study, finals)
    md = (study.out / "report.md").read_text()
    searched = md.split("Search on dev", 1)[1].split("</details>", 1)[0]  # the search's own table
    assert searched.count("✔") == 1  # the one chosen candidate
    assert "lost_seconds" in searched and "training redone after interruptions (lost" in searched
    # the learning curves draw each candidate's dev score beside the reported cells', its values on hover
    page = (study.out / "report.html").read_text()
    hovers = re.findall(r"<title>search candidate tiny-llama / lora \[([^]]+)\]( \(chosen\))?: dev", page)
    assert len(hovers) == 4 and sum(bool(chosen) for _, chosen in hovers) == 1, hovers
    # its head counts what it reports: zero-shot and the chosen LoRA on 2 seeds; the 4 search runs apart
    assert "3 finished cells reported (and 4 search runs, none of them a result)" in md
    assert all(state == "done" for state, _ in cell_states(Store(study.store_url), "t", cells))


def test_a_search_seed_among_the_reported_seeds_or_a_repeated_seed_is_refused(tmp_path):
    path = write_study(tmp_path, seeds=[0, 1], search={"grid": {"training.learning_rate": [1e-4]}, "seed": 1})
    with pytest.raises(BiotuneError, match=r"field 'search\.seed': 1 is one of the study's seeds"):
        load_study(path)
    path = write_study(tmp_path, seeds=[0, 0])
    with pytest.raises(BiotuneError, match=r"field 'seeds': a seed is listed twice"):
        load_study(path)


def test_bad_search_blocks_name_the_field(tmp_path):
    path = write_study(tmp_path, search={"method": {"nosuch": {"training.learning_rate": [1e-3]}}})
    with pytest.raises(BiotuneError, match=r"field 'search\.method\.nosuch'.*not one of the study's methods"):
        load_study(path)
    path = write_study(tmp_path, search={"grid": {"training.learning_rte": [1e-3]}})
    with pytest.raises(BiotuneError, match=r"learning_rte"):
        load_study(path)


def test_every_method_that_trains_has_its_own_search_space_with_a_source():
    from biotune.methods import METHODS

    for name, method in METHODS.items():
        if not method.trains:
            assert method.search_space == {}, name
            continue
        rates = method.search_space.get("training.learning_rate")
        assert rates and rates == sorted(rates) and len(rates) >= 3, name
        assert rates[0] <= method.default_lr <= rates[-1], (name, rates, method.default_lr)  # around its default
        assert method.search_source and any(ch.isdigit() for ch in method.search_source), name  # cites a year


def test_a_search_block_searches_each_trained_methods_own_space_where_the_study_names_none(tmp_path, capsys):
    """`search:` with no values for a method: its learning rate from the method's own space (LoRA's 1e-4, 3e-4,
    1e-3); a study's own values win field by field; `defaults: false`, or no search block, searches nothing."""
    from typer.testing import CliRunner

    from biotune.cli import app
    from biotune.methods import METHODS

    methods = ["lora", "fft", {"name": "few_shot", "params": {"shots": 1}}]
    rates = lambda study: {
        g.key[2]: [c.search.values.get("training.learning_rate") for c in g.candidates]  # noqa
        for g in study.groups
    }
    study, _, _ = load_study(write_study(tmp_path, methods=methods, search={"strategy": "halving"}))
    assert rates(study) == {m: METHODS.get(m).search_space["training.learning_rate"] for m in ("lora", "fft")}
    assert "LoRA Without Regret" in next(g for g in study.groups if g.key[2] == "lora").defaulted
    study, _, _ = load_study(
        write_study(tmp_path, methods=methods, search={"method": {"fft": {"training.learning_rate": [5e-5]}}})
    )
    assert rates(study) == {"lora": [1e-4, 3e-4, 1e-3], "fft": [5e-5]}
    assert next(g for g in study.groups if g.key[2] == "fft").defaulted == ""
    study, _, _ = load_study(write_study(tmp_path, methods=methods, search={"defaults": False}))
    assert study.groups == []
    study, cells, _ = load_study(write_study(tmp_path, methods=methods))
    assert study.groups == [] and len(cells) == 3
    # the dry run says where the values came from
    path = write_study(tmp_path, methods=["lora"], search={})
    result = CliRunner().invoke(app, ["study", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "learning_rate: lora's own space, LoRA (Hu et al. 2021)" in " ".join(result.output.split())


def test_unequal_training_budgets_are_warned_about_unless_the_study_says_so(tmp_path):
    from biotune.study.grid import budgets, unequal_budgets

    more = {"method": {"fft": {"training": {"max_steps": 4}}}}
    study, cells, _ = load_study(write_study(tmp_path, methods=["lora", "fft"], overrides=more))
    assert budgets(cells) == {
        "gad": {"2 steps of 2 examples": ["tiny-llama / lora"], "4 steps of 2 examples": ["tiny-llama / fft"]}
    }
    assert unequal_budgets(study, cells).startswith(
        "unequal training budgets (gad: 2 steps of 2 examples (tiny-llama / lora), 4 steps of 2 examples "
        "(tiny-llama / fft)): the methods are not compared on equal terms"
    )
    study, cells, _ = load_study(write_study(tmp_path, methods=["lora", "fft"], overrides=more, budgets="unequal"))
    assert unequal_budgets(study, cells) is None
    study, cells, _ = load_study(write_study(tmp_path, methods=["lora", "fft"]))
    assert unequal_budgets(study, cells) is None
    # a search over a budget's own field differs on purpose: not a warning
    study, cells, _ = load_study(
        write_study(
            tmp_path, methods=["lora", "fft"], search={"grid": {"training.max_steps": [2, 4]}, "defaults": False}
        )
    )
    assert unequal_budgets(study, cells) is None
