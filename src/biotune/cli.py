"""The `biotune` command. Thin: one function per sub-command, the work lives in the modules it calls.

Errors a user can fix (BiotuneError, invalid settings) print one line and exit 2, without a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import json
import logging
import os
import sys
import tempfile
import typing
from datetime import datetime
from pathlib import Path
from typing import Optional

import click
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .config import EvalConfig, load_experiment, parse_overrides
from .data import DATASETS, SPLITS, get_spec, load_split, resolve_data_dir, split_exists
from .data.fetch import default_target, fetch
from .errors import BiotuneError
from .export import export_run
from .io import atomic_write_text
from .study.adopt import finished_runs
from .study.grid import load_study, only_datasets, unequal_budgets
from .study.search import rung_sizes, summary
from .summary import RunSummary
from .tasks import task_for

app = typer.Typer(
    help="biotune: which way of adapting a language model to a biomedical task works best.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Inspect the datasets: the BLURB ones and your own dataset files.", no_args_is_help=True)
app.add_typer(data_app, name="data")
out = Console(width=None if sys.stdout.isatty() else 160)

GPU_OPTION = typer.Option(
    None,
    "--gpu",
    help=(
        "With --plan: a GPU of biotune's table (a100-80gb, h100-sxm, h200, l40s, rtx-4090, ...); without it (and "
        "without --gpu-memory) the plan is for this machine: its GPU, else this CPU (its matmul peak measured once)."
    ),
)
GPU_MEMORY_OPTION = typer.Option(
    None, "--gpu-memory", help="With --plan, for a GPU not in the table: its memory in GB."
)
GPU_TFLOPS_OPTION = typer.Option(None, "--gpu-tflops", help="With --plan and --gpu-memory: its dense bf16 TFLOP/s.")
GPUS_OPTION = typer.Option(
    1, "--gpus", help="With --plan: GPUs per cell (more than one: FSDP, sharded, data parallel)."
)
UTILIZATION_OPTION = typer.Option(
    0.4, "--utilization", help="With --plan: the fraction of peak FLOP/s training and prefill reach."
)
DATA_DIR = typer.Option(
    None, "--data-dir", help="Folder with the BLURB files (default: $BIOTUNE_DATA or ../shared/data/blurb)."
)


@data_app.command("list")
def data_list(
    data_dir: Optional[str] = DATA_DIR,
    include: list[str] = typer.Option(
        [], "--include", help="Also list the dataset files (*.yaml) in this folder (repeatable), or one dataset file."
    ),
) -> None:
    """Every dataset with its task type, metric and split sizes (and which splits are missing): the BLURB
    datasets, and the dataset files of --include."""

    specs = [spec for _, spec in DATASETS.items()]
    for item in include:
        p = Path(item)
        if not p.exists():
            raise BiotuneError(f"--include {item}: no such folder or file")
        specs += [get_spec(str(f)) for f in (sorted(p.glob("*.y*ml")) if p.is_dir() else [p])]
    location = resolve_data_dir(data_dir) if any(s.builtin for s in specs) else None
    table = Table(title=f"datasets (BLURB files in {location})" if location else "datasets")
    for col in ("dataset", "title", "task type", "metric", *SPLITS):
        table.add_column(col, justify="right" if col in SPLITS else "left")
    missing = []
    problems = []
    for spec in specs:
        sizes = []
        for split in SPLITS:
            try:
                if split in spec.files and split_exists(spec, split, location):
                    sizes.append(str(len(load_split(spec.ref, split, location))))
                elif split not in spec.files:
                    sizes.append("-")
                else:
                    sizes.append("[red]missing[/red]")
                    missing.append(spec.path(split, location))
            except BiotuneError as e:  # one dataset that cannot be read does not hide the others
                sizes.append("[red]error[/red]")
                problems.append(f"{spec.name} {split}: {e}")
        table.add_row(spec.name, spec.title, spec.task, task_for(spec).metric, *sizes)
    out.print(table)
    out.print(
        f"{len(specs)} datasets; units: sentences (NER, PICO), pairs (relations, BIOSSES), documents (HoC), "
        "questions (QA); '-': the dataset file names no such split."
    )
    if missing:
        out.print("missing files (see data/README.md for how to supply them):\n  " + "\n  ".join(missing))
    if problems:
        out.print("could not read:\n  " + "\n  ".join(problems), markup=False)


@data_app.command("fetch")
def data_fetch(
    to: Optional[str] = typer.Option(
        None,
        "--to",
        help="Folder to write the BLURB files to (default: ~/.cache/biotune/blurb, where biotune then finds them).",
    ),
    mirror: str = typer.Option(
        "https://raw.githubusercontent.com",
        "--mirror",
        help="Where the public copies are, as <mirror>/<owner>/<repo>/<commit>/<path> (a URL or a local folder).",
    ),
) -> None:
    """Fetch the BLURB files from public copies (the files BLURB's pipeline wrote, as KeBioLM commits them;
    PubMedQA from its repository, with BLURB's split regenerated) and verify each against biotune's checksums."""

    target = to or str(default_target())
    outcomes = fetch(target, mirror, log=lambda m: print(m, file=sys.stderr, flush=True))
    table = Table(title=f"BLURB files in {target}")
    for col in ("file", "status", "detail"):
        table.add_column(col)
    colour = {"ok": "green", "present": "green", "generated": "green", "missing": "yellow", "corrupt": "red"}
    for o in outcomes:
        table.add_row(o.path, f"[{colour[o.status]}]{o.status}[/{colour[o.status]}]", o.detail)
    out.print(table)
    bad = [o for o in outcomes if o.status == "corrupt"]
    missing = [o for o in outcomes if o.status == "missing"]
    out.print(
        f"{len(outcomes) - len(bad) - len(missing)} of {len(outcomes)} files verified; {len(missing)} missing, "
        f"{len(bad)} refused (checksum mismatch). Datasets with a missing split still run on the others."
    )
    if bad:
        raise typer.Exit(1)


@data_app.command("show")
def data_show(
    name: str,
    split: str = typer.Option("dev", "--split", help="train, dev or test"),
    n: int = typer.Option(3, "-n", help="how many examples"),
    data_dir: Optional[str] = DATA_DIR,
) -> None:
    """Print the first N examples of a split (NAME: a dataset or a dataset file), with the answer text a generative
    model is trained to write."""

    task = task_for(get_spec(name))
    ds = load_split(name, split, data_dir)
    for ex in ds.select(range(min(n, len(ds)))):
        out.print_json(json.dumps({**ex, "target": task.target(ex)}, ensure_ascii=False))


def options_of(model, **given) -> list[inspect.Parameter]:
    """The command-line options of a settings model, one per field, from the field's type, default and description
    (its one definition); `given`: a field's own typer.Option (a short name, another default). A choice of words
    is read as text and checked by the model; a list as comma-separated text."""
    params = []
    own = [n for n in model.model_fields if n in vars(model).get("__annotations__", {})]  # then the inherited ones
    for name in own + [n for n in model.model_fields if n not in own]:
        field = model.model_fields[name]
        kind, optional = field.annotation, False
        if type(None) in typing.get_args(kind):
            kind, optional = next(a for a in typing.get_args(kind) if a is not type(None)), True
        if typing.get_origin(kind) in (typing.Literal, list):
            kind = str
        default = given.get(name) or typer.Option(
            None if field.default_factory else field.default, help=field.description
        )
        annotation = Optional[kind] if optional or field.default_factory else kind
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
    return params


def eval_cmd(**options) -> None:
    """Zero-/few-shot evaluation of a generative model (causal, seq2seq, GLM) on BLURB: one zero_shot / few_shot
    experiment per dataset, as `biotune run` runs it; prints a table and the BLURB score."""

    options["datasets"] = [d.strip() for d in (options["datasets"] or "all").split(",") if d.strip()]
    if options["output_dir"] is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        options["output_dir"] = f"runs/eval-{options['model'].replace('/', '_')}-{options['shots']}shot-{stamp}"
    cfg = EvalConfig(**options)  # bad options are one line before torch is imported
    from .eval_run import run_eval

    summary = run_eval(cfg)
    print_summary(summary)
    out.print(f"predictions and metrics written to {cfg.output_dir}/")


eval_cmd.__signature__ = inspect.Signature(
    options_of(
        EvalConfig,
        datasets=typer.Option("all", help=EvalConfig.model_fields["datasets"].description),
        data_dir=DATA_DIR,
        output_dir=typer.Option(
            None,
            "--output-dir",
            "-o",
            help="Where predictions and metrics go (default: runs/eval-<model>-<shots>shot-<time>).",
        ),
        force=typer.Option(False, "--force", help=EvalConfig.model_fields["force"].description),
    )
)
app.command("eval")(eval_cmd)


@app.command("run")
def run_cmd(
    experiment: str = typer.Argument(..., help="Experiment YAML (see configs/)."),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", "-o", help="Overrides output_dir of the file."),
    set_: list[str] = typer.Option([], "--set", help="Override a field: --set dataset=hoc --set training.max_steps=20"),
    progress: bool = typer.Option(True, help="Show progress bars."),
    force: bool = typer.Option(
        False, "--force", help="Replace a result (or half-done run) of another experiment in the output folder."
    ),
    plan: bool = typer.Option(False, "--plan", help="Print the cost estimate (memory, FLOPs, time, fits) and exit."),
    gpu: Optional[str] = GPU_OPTION,
    gpu_memory: Optional[float] = GPU_MEMORY_OPTION,
    gpu_tflops: Optional[float] = GPU_TFLOPS_OPTION,
    gpus: int = GPUS_OPTION,
    utilization: float = UTILIZATION_OPTION,
) -> None:
    """Train (or not, for zero-/few-shot) and score one experiment; rerun to resume after a kill."""

    overrides = parse_overrides(set_)
    if output_dir:
        overrides["output_dir"] = output_dir
    cfg = load_experiment(experiment, overrides)
    if plan:
        from .plan import plan_experiment
        from .plan.render import assumptions, cell_table

        acc, gpus, utilization = _plan_target(gpu, gpu_memory, gpu_tflops, gpus, utilization)
        p = plan_experiment(cfg, acc, gpus, utilization)
        out.print(cell_table([(cfg.resolved_name(), p)], f"plan: {cfg.resolved_name()}"))
        for note in p.notes:
            out.print(f"note: {note}", soft_wrap=True)
        out.print(assumptions(acc, gpus, utilization), soft_wrap=True)
        return
    from .train import output_dir as out_of
    from .train import run_experiment

    planned = None if RunSummary.exists(out_of(cfg)) else _estimate(cfg)
    summary = run_experiment(cfg, progress=progress, force=force)
    if summary is None:  # a non-main process of a multi-process run: the main one reports
        return
    m, r = summary.metrics, summary.resources
    table = Table(title=summary.name)
    for col in (
        "dataset",
        "model",
        "method",
        "metric",
        "score",
        "trainable params",
        "peak mem (MB)",
        "train s",
        "tokens/s",
    ):
        table.add_column(col)
    peak = max(r.get("train_peak_memory_bytes", 0), r.get("eval_peak_memory_bytes", 0)) / 2**20
    table.add_row(
        summary.dataset,
        summary.model,
        summary.method,
        m["metric"],
        f"{summary.score:.2f}",
        f"{r['trainable_params']:,}",
        f"{peak:.0f}",
        str(r.get("train_seconds", "-")),
        str(r.get("train_tokens_per_s", "-")),
    )
    out.print(table)
    types = per_type(m)
    if types:
        out.print(f"{m['metric']} per entity type: {types}", soft_wrap=True)
    answers = answers_line(m)
    if answers:
        out.print(answers, soft_wrap=True)
    out.print(f"predictions, metrics and resources written to {out_of(cfg)}/")
    if planned is not None:
        from .plan.machine import this_machine
        from .plan.planner import learn
        from .plan.render import after_run

        out.print(after_run(planned, r), soft_wrap=True)
        with contextlib.suppress(OSError):  # the plan's cache cannot be written: later plans stay uncorrected
            learn(planned, cfg, this_machine(), summary.identity_hash or str(out_of(cfg)), r)


def _estimate(cfg):
    """The run's plan on this machine (the visible GPU, else this CPU), said in one line before it starts; its
    time is set against the run's when it ends. None where no plan can be made (said): the run goes on."""
    from .plan import plan_experiment
    from .plan.machine import estimates_on, this_machine
    from .plan.render import before_run

    if not estimates_on():
        return None
    try:
        acc = this_machine()
        p = plan_experiment(cfg, acc, suggest=False)
    except Exception as e:  # noqa: BLE001  (an estimate never stops the run it is for)
        out.print(f"plan: none ({type(e).__name__}: {escape((str(e).strip().splitlines() or [''])[0])})")
        return None
    out.print(before_run(p, acc), soft_wrap=True)
    return None if p.error else p


def answers_line(metrics: dict) -> str:
    """For generated answers: how many did not parse and how many ran to the token cap ('' for heads and option
    scoring): a cut answer is scored on the items complete before the cut, and a raised cap lets it finish."""
    if "n_truncated" not in metrics:
        return ""
    n, cut = metrics.get("n", 0), metrics["n_truncated"]
    line = f"answers: {metrics.get('n_unparsed', 0)} of {n} unparsed"
    if cut:
        line += (
            f", {cut} of {n} cut at the {metrics.get('max_new_tokens')}-token cap (scored on their complete items; "
            "eval.max_new_tokens raises the cap)"
        )
    return line


def per_type(metrics: dict) -> str:
    """A typed NER dataset's F1 per entity type, as metrics.json holds them beside the micro F1 (`f1_<type>`):
    'CHEMICAL 71.20 · GENE-N 40.10'; '' for any other dataset."""
    return " · ".join(f"{k.removeprefix('f1_')} {v:.2f}" for k, v in metrics.items() if k.startswith("f1_"))


@app.command("study")
def study_cmd(
    study_file: str = typer.Argument(..., help="Study YAML (see configs/demo.yaml)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the grid and exit."),
    executor: str = typer.Option("local", help="local: cells one after another here; ray: fan out over a Ray cluster."),
    ray_address: Optional[str] = typer.Option(
        None, help="With --executor ray: a running cluster ('auto' or host:port); default: start Ray locally."
    ),
    cpus_per_cell: float = typer.Option(1, help="With --executor ray: CPUs each cell reserves (its torch threads)."),
    gpus_per_cell: float = typer.Option(0, help="With --executor ray: GPUs each cell reserves."),
    report: bool = typer.Option(True, help="Write the report (biotune report) when the cells are done."),
    progress: bool = typer.Option(
        True,
        help="A live progress bar; --no-progress (a log file): a plain line as each cell starts, with the time left.",
    ),
    datasets: Optional[str] = typer.Option(
        None,
        "--datasets",
        help=(
            "Only these of the study's datasets (comma-separated names): a slice of a long study, its cells and "
            "searches; the rest stay as the store has them, and the report still covers the whole study. With "
            "--plan or --dry-run: that slice's."
        ),
    ),
    plan: bool = typer.Option(
        False,
        "--plan",
        help=(
            "Print each cell's cost estimate (memory, FLOPs, time, whether it fits, what would) and the totals, and "
            "exit."
        ),
    ),
    gpu: Optional[str] = GPU_OPTION,
    gpu_memory: Optional[float] = GPU_MEMORY_OPTION,
    gpu_tflops: Optional[float] = GPU_TFLOPS_OPTION,
    gpus: int = GPUS_OPTION,
    utilization: float = UTILIZATION_OPTION,
    reclaim: bool = typer.Option(
        False,
        "--reclaim",
        help=(
            "Also run the cells that workers of other machines claimed and did not finish: when those machines no "
            "longer run this study (stopped, lost, or a store copied from elsewhere). A live worker on this machine "
            "keeps its cells."
        ),
    ),
) -> None:
    """Run a grid of datasets x models x methods x seeds; finished cells are skipped on rerun."""
    study, cells, left_out = load_study(study_file)  # a bad study file is one line before torch is imported
    whole, every = study, cells
    if datasets is not None:
        study, cells = only_datasets(study, cells, [d.strip() for d in datasets.split(",") if d.strip()])
    if plan:
        _plan_study(study, cells, gpu, gpu_memory, gpu_tflops, gpus, utilization)
        return
    warning = unequal_budgets(study, cells)
    if warning:
        out.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    if dry_run:
        _print_dry_run(study, cells, left_out)
        return
    from .study.executors import EXECUTORS

    if executor not in EXECUTORS:
        raise BiotuneError(f"--executor {executor!r}: valid: {', '.join(EXECUTORS.names())}")
    options = (
        {"address": ray_address, "cpus_per_cell": cpus_per_cell, "gpus_per_cell": gpus_per_cell}
        if executor == "ray"
        else {}
    )
    from .study.cell_run import StudyInterrupted
    from .study.runner import run_study

    try:
        result = run_study(study, cells, executor=executor, reclaim=reclaim, progress=progress, **options)
    except StudyInterrupted as e:
        out.print(
            f"interrupted: {e} recorded as interrupted in {study.store_url}; rerun the same command to "
            "resume it from its last checkpoint"
        )
        raise typer.Exit(130) from None
    _print_study_result(study, result)
    if report:
        from .study.runner import final_study_cells

        _write_report(whole, result["final_cells"] if whole is study else final_study_cells(whole, every))
    if result["failed"]:
        raise typer.Exit(1)


def _print_dry_run(study, cells, left_out) -> None:
    """The grid a study would run: each cell's state and identity, each search's plan, the store."""
    from .study.runner import cell_states, existing_store, seed_conflicts

    states = cell_states(existing_store(study.store_url), study.name, cells)
    table = Table(title=f"study {study.name}: {len(cells)} cells")
    for col in ("#", "dataset", "model", "method", "seed", "state", "identity", "output"):
        table.add_column(col)
    for i, (c, (state, _why)) in enumerate(zip(cells, states), 1):
        method = c.method + (f" [{c.search.label()}]" if c.search else "")
        table.add_row(str(i), c.dataset, c.model, method, str(c.seed), state, c.identity_hash, c.experiment.output_dir)
    out.print(table)
    for c, (state, why) in zip(cells, states):
        if state in ("stale", "running"):
            out.print(f"{state} {c.label}: {why}", soft_wrap=True)
    counts = {k: sum(1 for s, _ in states if s == k) for k in ("done", "interrupted", "running", "stale", "new")}
    out.print(", ".join(f"{v} {k}" for k, v in counts.items() if v or k not in ("interrupted", "running")))
    for g in study.groups:
        sizes = rung_sizes(len(g.candidates), study.search.rungs, study.search.keep)
        ends = max(f for f, k in zip(study.search.rungs, sizes) if k) if g.candidates else 1.0
        how = (
            "every candidate its whole budget"
            if g.strategy == "grid"
            else f"successive halving at {study.search.rungs} of the budget, keeping {study.search.keep:.2g} at "
            f"each rung (with none failing or added, chosen at {ends:g} of the budget), the range growing at its "
            f"edge up to {study.search.grow} values"
        )
        out.print(
            f"search {'/'.join(g.key)}: {len(g.candidates)} candidates on search seed {g.search_seed} "
            f"({how}; scored on dev); the best then runs seeds {g.seeds} anew"
            + (f"; {g.defaulted}" if g.defaulted else ""),
            soft_wrap=True,
        )
    if (store := existing_store(study.store_url)) is not None:
        refused, warnings = seed_conflicts(study, store)
        for line in refused:
            out.print(f"[red]refused when run:[/red] {escape(line)}", soft_wrap=True)
        for line in warnings:
            out.print(f"[yellow]warning:[/yellow] {escape(line)}", soft_wrap=True)
    if study.adopt:
        runs = finished_runs(study.adopt)
        taken = [c for c, (state, _) in zip(cells, states) if state != "done" and c.identity_hash in runs]
        out.print(
            f"adopt: {len(runs)} finished runs in {', '.join(study.adopt)}; {len(taken)} cells take theirs instead "
            "of running" + (f" ({', '.join(c.label for c in taken)})" if taken else ""),
            soft_wrap=True,
        )
    if left_out:
        out.print("left out (the method does not fit the model): " + ", ".join(left_out))
    out.print(f"store: {study.store_url}")


def _print_study_result(study, result: dict) -> None:
    out.print(
        f"{result['ran']} cells run, "
        + (f"{result['adopted']} adopted from finished runs, " if result.get("adopted") else "")
        + f"{result['already_done']} already done, {result['failed']} failed, "
        f"{result['skipped']} taken by another worker; results in {study.store_url}"
    )
    out.print(
        f"disk: {result['disk_bytes'] / 1e6:,.1f} MB in {study.out}/ (checkpoints deleted once a cell's result "
        "is written; trained weights kept as each cell's `keep` says)"
    )


def _plan_study(study, cells, gpu, gpu_memory, gpu_tflops, gpus, utilization) -> None:
    from rich.progress import track

    from .plan import plan_cells
    from .plan.render import assumptions, cell_table, dataset_table, summary_table, totals

    acc, gpus, utilization = _plan_target(gpu, gpu_memory, gpu_tflops, gpus, utilization)
    rows = plan_cells(
        cells,
        study.groups,
        acc,
        gpus,
        utilization,
        lambda items: track(
            items, description="planning", console=Console(stderr=True), disable=not sys.stderr.isatty()
        ),
        study.search,
    )
    unit = "GPU-hours" if acc.device_type == "cuda" else "hours"
    out.print(cell_table([(label, p) for label, _, p in rows], f"plan: study {study.name}"))
    out.print(summary_table([((c.model, c.method), p) for _, c, p in rows], unit))
    out.print(dataset_table([(c.dataset, p) for _, c, p in rows], unit))
    # the rest are per cell; a correction is per model and method
    notes = sorted({n for _, _, p in rows for n in p.notes if "tokenizer" in n or n.startswith("time corrected")})
    for note in notes:
        out.print(f"note: {note}", soft_wrap=True)
    out.print(assumptions(acc, gpus, utilization), soft_wrap=True)
    out.print(totals([p for _, _, p in rows], unit), soft_wrap=True)


def _plan_target(gpu, gpu_memory, gpu_tflops, gpus: int, utilization: float):
    """The --plan options of `run` and `study`, checked: (accelerator, GPUs per cell, utilisation)."""
    from .plan import accelerator

    if gpus < 1:
        raise BiotuneError(f"--gpus {gpus}: expected 1 or more")
    if not 0 < utilization <= 1:
        raise BiotuneError(f"--utilization {utilization}: expected a fraction of the peak, in (0, 1], e.g. 0.4")
    if gpu is None and gpu_memory is None and gpu_tflops is None:  # the machine it runs on
        from .plan.machine import this_machine

        return this_machine(), gpus, utilization
    return accelerator(gpu, gpu_memory, gpu_tflops), gpus, utilization


@app.command("report")
def report_cmd(
    study_file: str = typer.Argument(..., help="The study YAML (its name, store and output folder)."),
    memory_budgets: Optional[str] = typer.Option(
        None,
        help=(
            "Peak-memory budgets in MB for the recommendations, e.g. 2048,8192,inf (default: the study file's "
            "report.memory_budgets_mb)."
        ),
    ),
    time_budgets: Optional[str] = typer.Option(
        None, help="Training-time budgets in seconds, e.g. 300,3600,inf (default: report.time_budgets_s)."
    ),
    samples: Optional[int] = typer.Option(None, help="Bootstrap resamples (default: report.bootstrap_samples)."),
) -> None:
    """Write report.html (self-contained: tables, Pareto plots, significance, recommendations) and report.md."""
    from .study.runner import final_study_cells

    study, cells, _ = load_study(study_file)
    _write_report(study, final_study_cells(study, cells), memory_budgets, time_budgets, samples)


def _write_report(
    study, cells, memory_budgets: str | None = None, time_budgets: str | None = None, samples: int | None = None
) -> None:
    from .report.build import build_report

    try:
        mem = [float(x) for x in memory_budgets.split(",")] if memory_budgets else study.report.memory_budgets_mb
        sec = [float(x) for x in time_budgets.split(",")] if time_budgets else study.report.time_budgets_s
    except ValueError:
        raise BiotuneError("--memory-budgets / --time-budgets: comma-separated numbers or inf") from None
    from .study import halving
    from .study.store import Store

    store = Store(study.store_url)
    searched = summary([g for g in study.groups if g.strategy == "grid"], store.done(study.name))
    adaptive = [g for g in study.groups if g.strategy == "halving"]
    searched += halving.summaries(store, study.name, adaptive, study.search.rungs) if adaptive else []
    result = build_report(
        study.store_url,
        study.name,
        study.out,
        mem,
        sec,
        samples or study.report.bootstrap_samples,
        identities={c.key: c.identity_hash for c in cells},
        search=searched,
        # every dataset of the study, finished or not: the table has a row for each
        datasets=list(
            dict.fromkeys([c.dataset for c in cells] + [c.dataset for g in study.groups for c in g.candidates])
        ),
        data_dir=study.data_dir,
    )
    out.print(f"report of {result['cells']} cells: {result['html']} (and {result['markdown']})")


@app.command("export")
def export_cmd(
    run_dir: str = typer.Argument(..., help="A finished run's folder (biotune run, or a study cell's)."),
    out_dir: str = typer.Option(..., "--out", help="New folder to write."),
    merge: bool = typer.Option(
        False,
        "--merge",
        help="Merge the adapter into the base model (one transformers folder; QLoRA: into the bf16 base).",
    ),
) -> None:
    """Export a run's trained weights: the adapter as a standard peft folder (or the fully fine-tuned model), or
    with --merge the base model with the adapter merged in; safetensors, tokenizer and a model card."""

    path = export_run(run_dir, out_dir, merge)
    out.print(f"exported to {path}/ ({', '.join(sorted(p.name for p in path.iterdir()))})")


results_app = typer.Typer(help="The results store.", no_args_is_help=True)
app.add_typer(results_app, name="results")


@results_app.command("export")
def results_export(
    store: str = typer.Option(..., "--store", help="Store URL, e.g. sqlite:///runs/demo/results.sqlite"),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet"),
    output: str = typer.Option(..., "--output", "-o", help="File to write."),
    study: Optional[str] = typer.Option(None, help="Only this study."),
) -> None:
    """Export the results store (one row per cell, metrics and resources as columns)."""
    from .study.store import Store

    if fmt not in ("csv", "parquet"):
        raise BiotuneError(f"--format {fmt!r}: valid: csv, parquet")
    df = Store(store).dataframe(study)
    if fmt == "csv":
        atomic_write_text(output, df.to_csv(index=False))
    else:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(output)), suffix=".parquet")
        os.close(fd)
        df.to_parquet(tmp, index=False)
        os.replace(tmp, output)
    out.print(f"{len(df)} rows written to {output}")


def print_summary(summary: dict) -> None:
    s = summary["settings"]
    table = Table(title=f"{s['model']} · {s['shots']}-shot · {s['scoring']} · {s['split']} split · seed {s['seed']}")
    for col in ("dataset", "task type", "metric", "split", "score", "n", "unparsed", "cut at cap", "shots dropped"):
        table.add_column(col, justify="left" if col in ("dataset", "task type", "metric", "split") else "right")
    for name, r in summary["datasets"].items():
        split = r["split"] + (f" (shots: {r['shot_split']})" if r["shot_split"] and r["shot_split"] != "train" else "")
        table.add_row(
            name,
            r["task"],
            r["metric"],
            split + ("" if r["blurb_comparable"] else " *"),
            f"{r['score']:.2f}",
            str(r["n"]),
            str(r["n_unparsed"]),
            str(r.get("n_truncated", "-")),
            str(r["n_shots_dropped"]),
        )
    for name in summary["skipped"]:
        table.add_row(name, "", "skipped (split missing)", "-", "-", "-", "-", "-", "-")
    out.print(table)
    for name, r in summary["datasets"].items():
        types = per_type(r)
        if types:
            out.print(f"{name}: {r['metric']} per entity type: {types}", soft_wrap=True)
        if r.get("n_truncated"):
            out.print(f"{name}: {answers_line(r)}", soft_wrap=True)
    if not all(r["blurb_comparable"] for r in summary["datasets"].values()):
        out.print("* not comparable to published BLURB numbers: not a BLURB dataset, or not its test split")
    b = summary["blurb"]
    note = (
        ""
        if b["complete"]
        else f" (partial: {b['n_task_types']}/6 task types{', datasets skipped' if summary['skipped'] else ''})"
    )
    if b["n_task_types"]:
        out.print(f"BLURB score: {b['blurb_score']:.2f}{note}")
    else:
        out.print("BLURB score: none (no BLURB dataset evaluated)")


def _one_line(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        field = ".".join(str(x) for x in err["loc"]) or "settings"
        parts.append(f"{field}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _usage_errors() -> tuple:
    """click's usage errors, and typer's own copies of them (typer >= 0.22 vendors click as typer._click, whose
    exceptions are not click's: without them an unknown option ended in a traceback)."""
    try:
        from typer._click.exceptions import ClickException as TyperClickException  # noqa: PLC0415  (typer >= 0.22 only)
    except ImportError:
        return (click.ClickException,)
    return (click.ClickException, TyperClickException)


_USAGE_ERRORS = _usage_errors()


def _printable(text: str) -> str:
    """A message on one line whatever it quotes: control characters (a path or a value from a user's file may hold
    any) written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def main(argv: list[str] | None = None) -> None:

    # bitsandbytes warns at import, on every CPU with AVX512-BF16, that its optional hub-downloaded CPU 4-bit kernel
    # (the `kernels` package) is absent; its built-in kernel is what runs. Not a user error: keep stderr for those.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    try:
        code = app(args=argv, standalone_mode=False)  # outside standalone mode, click returns an Exit's code
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except _USAGE_ERRORS as e:  # an unknown option, a missing argument: click's one-line usage error
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except BiotuneError as e:
        print(f"biotune: error: {_printable(str(e))}", file=sys.stderr)
        sys.exit(2)
    except ValidationError as e:
        print(f"biotune: error: {_one_line(e)}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        if e.filename is None:  # not about a path the user gave: a defect or the machine's, keep the traceback
            raise
        hint = {
            errno.EACCES: "give a path you may write (e.g. --output-dir)",
            errno.EROFS: "the disk is read-only: give a path on another (e.g. --output-dir)",
            errno.EEXIST: "it is in the way: remove it or give another path",
            errno.ENOTDIR: "a file stands where a folder is needed: give another path",
            errno.EISDIR: "a folder stands where a file is needed: give another path",
        }.get(e.errno, "")
        print(
            _printable(f"biotune: error: {e.filename}: {e.strerror or e}" + (f": {hint}" if hint else "")),
            file=sys.stderr,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
