"""Plans as tables: one row per cell, a summary per (model, method), and the totals."""

from __future__ import annotations

from collections import defaultdict

from rich.table import Table

from biotune.progress import duration

from .gpus import BANDWIDTH_EFFICIENCY, Accelerator
from .machine import took
from .planner import QLORA_SPEED, Plan, measured_parts


def _gb(b: float) -> str:
    return f"{b / 1e9:,.1f}" if b >= 1e8 else f"{b / 1e9:,.2f}"


def _h(seconds: float) -> str:
    """A cell's planned time, in the unit that reads ('8 s', '12 min', '2.4 h')."""
    return duration(seconds)


def _reads(acc: Accelerator) -> str:
    """What bounds a generation step in the plan (Accelerator.read_bytes_per_s), in words."""
    if acc.read_gbs:
        rates = ", ".join(f"{r}: {g:.3g}" for r, g in acc.read_gbs)
        rate = f"the rate measured here for a decoding step's matmuls by rows (GB/s {rates})"
    elif acc.bandwidth_tbs:
        rate = f"{BANDWIDTH_EFFICIENCY:.0%} of the bandwidth"
    else:
        return "generation bound by its compute"
    return f"generation steps bound by their compute or by reading every weight and the KV cache at {rate}"


def assumptions(acc: Accelerator, gpus: int, utilization: float) -> str:
    where = f"{gpus} x {acc.name}" if gpus > 1 else acc.name
    flops = acc.bf16_tflops if acc.bf16 else acc.fp32_tflops
    reads = _reads(acc)
    if acc.device_type == "cpu":
        return (
            f"plan for {where} ({acc.memory_bytes / 1e9:,.0f} GB of memory; matmul peak measured here: "
            f"{acc.fp32_tflops:.3g} TFLOP/s fp32" + (f", {acc.bf16_tflops:.3g} bf16" if acc.bf16 else "") + "): "
            f"compute at {utilization:.0%} of the peak in the run's dtype (QLoRA "
            f"{QLORA_SPEED:.0%} of that), {reads}; memory is torch's peak allocation (the "
            "process adds about 0.5 GB of libraries). A CPU reaches a varying share of its peak: each run prints "
            "its time against this plan when it ends, and later plans here are corrected by it (notes say by "
            "how much; biotune.plan.calibration)"
        )
    return (
        f"plan for {where} ({acc.memory_bytes / 1e9:,.0f} GB, {flops:g} TFLOP/s "
        f"{'bf16' if acc.bf16 else 'fp32'}; {acc.usable_bytes / 1e9:,.1f} GB usable after the CUDA context and "
        f"fragmentation): compute at {utilization:.0%} of peak (QLoRA {QLORA_SPEED:.0%} of that), {reads}; memory "
        "is torch's peak allocation"
    )


def cell_table(rows: list[tuple[str, Plan]], title: str) -> Table:
    table = Table(title=title)
    for col in (
        "cell",
        "trainable",
        "peak GB",
        "weights + train state + activations",
        "fits",
        "PFLOP train / dev / test",
        "time",
        "what would fit / note",
    ):
        table.add_column(col, overflow="fold")
    for label, p in rows:
        if p.error:
            table.add_row(label, "-", "-", "-", "?", "-", "-", p.error)
            continue
        table.add_row(
            label,
            f"{p.trainable_params:,}",
            _gb(p.peak_bytes),
            f"{_gb(p.weights_bytes)} + {_gb(p.state_bytes)} + {_gb(p.activation_bytes)}",
            "yes" if p.fits else "NO",
            " / ".join(f"{f / 1e15:,.3g}" for f in (p.train_flops, p.dev_flops, p.eval_flops)),
            _h(p.seconds),
            "; ".join(p.suggestions),
        )
    return table


def summary_table(rows: list[tuple[tuple[str, str], Plan]], unit: str = "GPU-hours") -> Table:
    """Per (model, method): cells, how many fit, the largest peak, GPU-hours (`unit`: hours of a CPU), what the
    others need."""
    groups: dict = defaultdict(list)
    for key, p in rows:
        groups[key].append(p)
    table = Table(title="by model and method")
    for col in ("model", "method", "cells", "fit", "max peak GB", unit, "cells that do not fit need"):
        table.add_column(col, overflow="fold")
    for (model, method), plans in groups.items():
        ok = [p for p in plans if p.error is None]
        need = sorted({s for p in ok if not p.fits for s in p.suggestions[:1]})
        unplanned = len(plans) - len(ok)
        table.add_row(
            model,
            method,
            str(len(plans)),
            f"{sum(p.fits for p in ok)}" + (f" ({unplanned} unplanned)" if unplanned else ""),
            _gb(max((p.peak_bytes for p in ok), default=0)),
            _hours(sum(p.gpu_hours for p in ok)),
            "; ".join(need),
        )
    return table


def dataset_table(rows: list[tuple[str, Plan]], unit: str = "GPU-hours") -> Table:
    """Per dataset, in the order `rows` first name them (the study's), its cells, hours (`unit`) and the running
    total, which says how far a slice of so many hours gets in a study that lands whole datasets in turn."""
    groups: dict = defaultdict(list)
    for dataset, p in rows:
        groups[dataset].append(p)
    table = Table(title="by dataset, in the study's order")
    for col in ("dataset", "cells", unit, "running total"):
        table.add_column(col, overflow="fold")
    total = 0.0
    for dataset in groups:
        hours = sum(p.gpu_hours for p in groups[dataset] if p.error is None)
        total += hours
        table.add_row(dataset, str(len(groups[dataset])), _hours(hours), _hours(total))
    return table


def _hours(h: float) -> str:
    return f"{h:,.1f}" if h >= 10 else f"{h:.3g}"


def totals(plans: list[Plan], unit: str = "GPU-hours") -> str:
    ok = [p for p in plans if p.error is None]
    fit = [p for p in ok if p.fits]
    hours = sum(p.gpu_hours for p in ok)
    fit_hours = sum(p.gpu_hours for p in fit)
    first = defaultdict(int)
    for p in ok:
        if not p.fits:
            first[p.suggestions[0] if p.suggestions else "?"] += 1
    needs = ", ".join(f"{n} need {what}" for what, n in sorted(first.items(), key=lambda x: -x[1]))
    line = (
        f"{len(plans)} cells: {len(fit)} fit, {len(ok) - len(fit)} do not"
        + (f" ({needs})" if needs else "")
        + (f", {len(plans) - len(ok)} cannot be planned" if len(ok) < len(plans) else "")
        + f"; {_hours(hours)} {unit} in all ({_hours(fit_hours)} for the cells that fit as they are)"
        + (
            "; an adaptive search's candidates counted at the share of their budget halving runs on average"
            if any(p.share < 1 for p in ok)
            else ""
        )
    )
    return line


def before_run(p: Plan, acc: Accelerator) -> str:
    """One line before a run: what the plan expects of it on this machine."""
    if p.error:
        return f"plan: none ({p.error})"
    planned = p.parts()
    parts = ([f"training {duration(planned['training'])}"] if p.trains else []) + [
        f"prediction {duration(planned['prediction'])}"
    ]
    corrected = (
        "; corrected by this machine's finished runs: " + ", ".join(c.words(k) for k, c in p.corrections.items())
        if p.corrections
        else ""
    )
    return (
        f"plan on {acc.name}: about {duration(p.seconds)} ({', '.join(parts)}), {_gb(p.peak_bytes)} GB peak "
        + ("memory" if acc.device_type == "cpu" else "GPU memory")
        + ("" if p.fits else "; it does not fit: " + ("; ".join(p.suggestions) or "see biotune run --plan"))
        + corrected
    )


def after_run(p: Plan, resources: dict) -> str:
    """One line after a run: its time against the plan, in all and per part ('planned 21 min, took 24 min')."""
    ran, planned = measured_parts(resources, p.trains), p.parts()
    parts = [
        f"{k} {duration(planned[k])} → {duration(ran[k])}"
        for k in ("training", "prediction")
        if p.trains or k != "training"
    ]
    total = sum(ran.values())
    return f"planned {duration(p.seconds)}, took {duration(total)} ({took(p.seconds, total)}: " + ", ".join(parts) + ")"
