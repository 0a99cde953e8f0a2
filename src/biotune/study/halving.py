"""Adaptive search on dev: successive halving with range growth (`search.strategy: halving`, the default).

Every candidate of a (dataset, model, method) search trains to the first rung (`search.rungs`: fractions of the
training budget; a rung ends at the first dev evaluation at or after its fraction, `TrainingConfig.pause_step`),
its checkpoint kept, and is scored on dev with the dataset's metric (the kept model's score so far). The best
`search.keep` of them (at least one; ties: the earlier candidate) go on *from their checkpoints* to the next rung
— nothing is retrained, and the learning-rate schedule was set for the whole budget from the first step, so a
survivor's final model is the one an uninterrupted run would have given — and the rest stop there. After the first
rung, a numeric field on a grid of positive values (a learning rate) whose best value is the first or last tried,
and better than every other value's (not tied), grows: the next value beyond it on the grid's own ratio is added,
trained to the first rung and compared again, at most `search.grow` times per field and direction (the report says
where that bound stopped it, or a tie kept it from growing). The search ends at the last rung (the full budget;
the candidates stop there too, before predicting: a search run is never a result, so none predicts the test
split), or earlier at the first rung that keeps only one candidate: its best candidate is chosen, and runs every
reported seed anew (search.py). A lone survivor does not train on: the rungs after would compare it with nothing,
and its value is trained again on every reported seed anyway (with `rungs: [0.25, 1.0]` and the default `keep` of
a third, three candidates cost three quarter budgets, not 1.5 budgets).

Every rung score and decision is written to the store (`search_rungs`) as it is made; the rule reads only those
scores, so it is deterministic, and a killed search rerun makes the same decisions and resumes its survivors from
their checkpoints. The cells of one rung are one batch for the executor (local, or fanned out over Ray).

Why by hand: Optuna's SuccessiveHalvingPruner and Ray Tune's ASHA decide asynchronously, each trial against the
rung results that happen to be in when it reports, so two runs of one study (or one under Ray and one local) can
decide differently; both keep their own trial state beside ours, and neither grows a range. The synchronous rule
is a few lines over the store this study already keeps.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

from .search import SearchGroup, SearchRef, at_edge, kept
from .store import group_key, holder_state, row_key


def rung_cell(cell, fraction: float):
    """The candidate cell set to stop at `fraction` of its budget. The last rung (1) trains to the end and stops
    there too, before any prediction: a candidate is a search run, never a result, so it predicts no test split
    (its dev score, what the rule reads, comes from training). The identity and folder are the candidate's own: a
    rung is how far one invocation trains, not another experiment."""

    training = cell.experiment.training.model_copy(update={"pause_at": min(fraction, 1.0)})
    return dataclasses.replace(cell, experiment=cell.experiment.model_copy(update={"training": training}))


def starting_candidates(groups: list[SearchGroup]) -> set[str]:
    """The identities of the adaptive searches' starting candidates among `groups`: search runs, never results,
    run rung by rung here rather than as cells (they end paused at a rung, the last one included; range growth's
    candidates are not cells of the grid at all)."""
    return {c.identity_hash for g in groups if g.strategy == "halving" for c in g.candidates}


def candidates(group: SearchGroup, rows: list[dict]) -> list:
    """The group's candidates: its grid's, then those range growth added (in the order added)."""
    out = list(group.candidates)
    seen = {c.identity_hash for c in out}
    for r in rows:
        if r["config_hash"] in seen:
            continue
        values = json.loads(r["candidate"])
        cell = group.make(values, len(out), group.search_seed)
        cell.search = SearchRef(group.key, values, len(out))
        out.append(cell)
        seen.add(cell.identity_hash)
    return out


def _scores(rows: list[dict], rung: int) -> dict[str, float | None]:
    return {r["config_hash"]: r["dev_score"] for r in rows if r["rung"] == rung and r["decision"] != "added"}


def survivors(cands: list, rows: list[dict], rung: int, keep: float) -> list | None:
    """The candidates that go on past `rung` (sorted by their rung score, best first; ties: the earlier one), or
    None while a candidate alive at that rung has no score there yet."""
    alive = alive_at(cands, rows, rung)
    scores = _scores(rows, rung)
    if any(c.identity_hash not in scores for c in alive):
        return None
    scored = [c for c in alive if scores[c.identity_hash] is not None]  # a failed candidate stops
    ranked = sorted(scored, key=lambda c: (-scores[c.identity_hash], c.search.index))
    return ranked[: kept(len(ranked), keep)]


def alive_at(cands: list, rows: list[dict], rung: int) -> list:
    """The candidates that train to `rung`: all at the first; after it, those a decision continued."""
    if rung == 0:
        return list(cands)
    went_on = {r["config_hash"] for r in rows if r["rung"] == rung - 1 and r["decision"] == "continue"}
    return [c for c in cands if c.identity_hash in went_on]


def grow(cands: list, rows: list[dict], grid: dict[str, list], bound: int) -> tuple[list[dict], list[str]]:
    """After the first rung: values to add beyond the end of each numeric field where the best candidate sits at
    that end, on the grid's own ratio (at most `bound` per field and direction); and notes where the bound was
    reached. Nothing while the first rung is incomplete or a candidate added earlier has not run."""
    scores = _scores(rows, 0)
    if any(c.identity_hash not in scores for c in cands):
        return [], []
    scored = [c for c in cands if scores[c.identity_hash] is not None]
    if not scored:
        return [], []
    best = min(scored, key=lambda c: (-scores[c.identity_hash], c.search.index))
    tried = [c.search.values for c in cands]
    add, notes = [], []
    if any(scores[c.identity_hash] == scores[best.identity_hash] for c in scored if c is not best):
        # the end value is not better than another value of the range (every candidate at 0 F1 at the first rung,
        # say): nothing says the range should go on past it
        tie = [n.split(".")[-1] for n in grid if best.search.values.get(n) in _ends(cands, n)]
        if tie:
            notes.append(f"{', '.join(tie)} did not grow: the best first-rung dev score is tied by another value")
        return [], notes
    for name, start in grid.items():
        values = sorted({v for v in start if _positive_number(v)})
        if len(values) < 2 or len(values) != len(start):
            continue
        ratio = (values[-1] / values[0]) ** (1 / (len(values) - 1))
        seen = sorted({t[name] for t in tried})
        v = best.search.values[name]
        for end, direction, beyond in ((seen[-1], "up", seen[-1] * ratio), (seen[0], "down", seen[0] / ratio)):
            if v != end:
                continue
            grown = sum(1 for x in seen if (x > values[-1] if direction == "up" else x < values[0]))
            if grown >= bound:
                notes.append(
                    f"{name.split('.')[-1]} stopped growing {direction} at {end:.3g} (bound search.grow = {bound})"
                )
                continue
            new = {**best.search.values, name: float(f"{beyond:.3g}")}
            if new not in tried:
                add.append(new)
    return add, notes


def _ends(cands: list, name: str) -> tuple:
    seen = sorted({c.search.values[name] for c in cands if _positive_number(c.search.values.get(name))})
    return (seen[0], seen[-1]) if seen else ()


def _positive_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v > 0 and math.isfinite(v)


def record_reached(store, study: str, group: SearchGroup, cands: list, rung: int, fraction: float) -> None:
    """Write each alive candidate's rung-`rung` score from its store row (paused at that rung; or done: a store
    written before the last rung paused, or a run finished before its rung), and a candidate that failed as
    reached with no score (it stops)."""
    rows = _group_rows(store, study, group)
    have = {(r["config_hash"], r["rung"]) for r in rows if r["decision"] != "added"}
    results = {(row_key(r), r["config_hash"]): r for r in store.rows(study)}
    for c in alive_at(cands, rows, rung):
        if (c.identity_hash, rung) in have:
            continue
        row = results.get((c.key, c.identity_hash))
        if row is None:
            continue
        info = json.loads(row["metrics"] or "{}") if row["status"] == "paused" else {}
        if row["status"] == "done":
            res = json.loads(row["resources"] or "{}")
            reached = {"step": None, "dev_score": row["dev_score"], "train_seconds": res.get("train_seconds")}
        elif row["status"] == "paused" and info.get("pause_at") == fraction:
            reached = {k: info.get(k) for k in ("step", "dev_score", "train_seconds")}
        elif row["status"] == "failed":
            reached = {
                "step": None,
                "dev_score": None,
                "train_seconds": None,
                "decision": "stop",
                "note": (row["error"] or "failed")[:200],
            }
        else:
            continue
        store.record_rung(study, group.key, c.identity_hash, c.search.values, rung, **{"decision": None, **reached})


def run_halving(study, store, groups: list[SearchGroup], run_batch: Callable[[list], None], say: Callable) -> dict:
    """Run the adaptive searches of `groups` rung by rung (each rung's cells one batch for the executor). Returns
    {group key: the chosen candidate cell, or None while a search is incomplete (a cell claimed elsewhere)}."""
    cfg = study.search
    done_groups: dict = {}
    retry_failed(store, study.name, groups, say)
    freed = 0
    every = [r for r in store.rung_rows(study.name) if r["decision"] != "note"]  # read once for every search
    for g in groups:  # candidates stopped by an earlier run of the study
        rows = [r for r in every if group_key(r) == g.key]
        freed += release_stopped(candidates(g, rows), rows)
    if freed:
        say(f"search: {freed / 1e6:,.0f} MB of stopped candidates' checkpoints deleted")
    for g in groups:  # searches an earlier run of the study ended: their decisions stand as recorded
        rows = [r for r in every if group_key(r) == g.key]
        chosen = {r["config_hash"] for r in rows if r["decision"] == "chosen"}
        for c in candidates(g, rows):
            if c.identity_hash in chosen:
                done_groups[g.key] = c
    for r, fraction in enumerate(cfg.rungs):
        while True:
            batch = []
            for g in groups:
                if g.key in done_groups:
                    continue
                rows = _group_rows(store, study.name, g)
                cands = candidates(g, rows)
                scored = _scores(rows, r)
                batch += [rung_cell(c, fraction) for c in alive_at(cands, rows, r) if c.identity_hash not in scored]
            if batch:
                say(f"rung {r + 1} of {len(cfg.rungs)} ({fraction:g} of the budget): {len(batch)} candidate runs")
                run_batch(batch)
            grew = False
            for g in groups:
                if g.key in done_groups:
                    continue
                rows = _group_rows(store, study.name, g)
                cands = candidates(g, rows)
                record_reached(store, study.name, g, cands, r, fraction)
                rows = _group_rows(store, study.name, g)
                if r == 0:
                    add, notes = grow(cands, rows, g.grid, cfg.grow)
                    for i, values in enumerate(add):
                        cell = g.make(values, len(cands) + i, g.search_seed)
                        store.record_rung(
                            study.name,
                            g.key,
                            cell.identity_hash,
                            values,
                            0,
                            decision="added",
                            note="range growth: the best value was at the end of the range",
                        )
                        say(
                            f"search {'/'.join(g.key)}: the best value is at the end of the range; adding "
                            + ", ".join(f"{k.split('.')[-1]}={v}" for k, v in values.items() if k in g.grid)
                        )
                    for note in notes:
                        store.record_rung(study.name, g.key, f"note:{note[:24]}", {}, 0, decision="note", note=note)
                    if add:
                        grew = True
                        continue  # decided once the added candidates have reached this rung too
                went_on = survivors(cands, rows, r, cfg.keep)
                if went_on is None:
                    continue  # a candidate of this rung is still running elsewhere
                last = r == len(cfg.rungs) - 1 or len(went_on) == 1  # alone, it would be compared with none
                ahead = {c.identity_hash for c in went_on}
                for c in alive_at(cands, rows, r):
                    decision = (
                        ("chosen" if went_on and c.identity_hash == went_on[0].identity_hash else "stop")
                        if last
                        else ("continue" if c.identity_hash in ahead else "stop")
                    )
                    store.record_rung(study.name, g.key, c.identity_hash, c.search.values, r, decision=decision)
                if len(went_on) == 1 and r < len(cfg.rungs) - 1:
                    settle_alone(store, study.name, went_on[0], fraction)
                release_stopped(cands, _group_rows(store, study.name, g))
                if last or not went_on:
                    done_groups[g.key] = went_on[0] if went_on else None
            if not grew:
                break
    return {g.key: done_groups.get(g.key) for g in groups}


def settle_alone(store, study: str, cand, fraction: float) -> None:
    """`cand` is chosen alone at the rung at `fraction` before the last. A store written when a lone survivor still
    trained on holds its run towards the next rung, stopped by the user or claimed by a worker that is gone (or of
    another machine): that run decides nothing now, and its row reads paused at this rung again."""
    for row in store.rows(study):
        if row["config_hash"] != cand.identity_hash or row["status"] not in ("interrupted", "running", "failed"):
            continue
        info = json.loads(row["metrics"] or "{}")
        if info.get("pause_at") == fraction and (row["status"] != "running" or holder_state(row["worker"]) != "alive"):
            store.pause(study, cand.key, cand.identity_hash, info)


def release_stopped(cands: list, rows: list[dict]) -> int:
    """Delete the checkpoints of the candidates the rule stopped (a dev score at their rung and the decision 'stop',
    which is final: a stopped candidate never trains on) and of the one it chose (its value runs
    anew on the reported seeds); they only served to go on from. Their paused.json, dev steps and log stay (the
    search table reads the store). A candidate stopped because its run failed keeps its checkpoint: the next run of
    the study tries it again from there (`retry_failed`). Returns the bytes freed."""
    stopped = {r["config_hash"] for r in rows if r["decision"] in ("stop", "chosen") and r["dev_score"] is not None}
    freed = 0
    for c in cands:
        folder = Path(c.experiment.output_dir) / "checkpoints"
        if c.identity_hash in stopped and folder.is_dir():
            freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(folder, ignore_errors=True)
    return freed


def retry_failed(store, study: str, groups: list[SearchGroup], say: Callable) -> None:
    """A candidate that failed stops its search's rung for the run of the study it failed in (so the search can end
    without it); a later run of the study tries it again, as it does any failed cell, while its search has not
    chosen: its failure's record at that rung is forgotten, and the rung is decided anew once it has run."""
    status = {(row_key(r), r["config_hash"]): r["status"] for r in store.rows(study)}
    for g in groups:
        rows = _group_rows(store, study, g)
        if any(r["decision"] == "chosen" for r in rows):
            continue
        cands = {c.identity_hash: c for c in candidates(g, rows)}
        failed = [
            r
            for r in rows
            if r["dev_score"] is None
            and r["decision"] == "stop"
            and r["config_hash"] in cands
            and status.get((cands[r["config_hash"]].key, r["config_hash"])) == "failed"
        ]
        for r in failed:
            store.forget_rung(study, g.key, r["config_hash"], r["rung"])
        if failed:
            say(f"search {'/'.join(g.key)}: trying again {len(failed)} candidate run(s) that failed before")


def _group_rows(store, study: str, group: SearchGroup) -> list[dict]:
    return [r for r in store.rung_rows(study) if group_key(r) == group.key and r["decision"] != "note"]


def choice(store, study: str, group: SearchGroup) -> tuple[int, dict] | None:
    """(index, values) of the candidate an adaptive search chose, from the store; None while it has not ended."""
    if store is None:
        return None
    rows = _group_rows(store, study, group)
    cands = candidates(group, rows)
    chosen = {r["config_hash"] for r in rows if r["decision"] == "chosen"}
    for c in cands:
        if c.identity_hash in chosen:
            return c.search.index, c.search.values
    return None


def summary(store, study: str, group: SearchGroup, rungs: list[float]) -> list[dict]:
    """One row per candidate of one search (`summaries` of one group)."""
    return summaries(store, study, [group], rungs)


def summaries(store, study: str, groups: list[SearchGroup], rungs: list[float]) -> list[dict]:
    """One row per candidate of each adaptive search in `groups`: its values, dev score at each rung reached,
    where it stopped, its training time (the compute of its trajectory: every rung it trained), the training
    redone after kills, and whether it was chosen. The store is read once for all of them."""
    rung_rows, results = store.rung_rows(study), store.rows(study)
    out = []
    for group in groups:
        out += _candidates_table(
            [r for r in rung_rows if group_key(r) == group.key],
            _lost_seconds([r for r in results if group_key(r) == group.key]),
            group,
            rungs,
        )
    return out


def _candidates_table(all_rows: list[dict], lost: dict[str, float], group: SearchGroup, rungs) -> list[dict]:
    rows = [r for r in all_rows if r["decision"] != "note"]
    notes = [r["note"] for r in all_rows if r["decision"] == "note"]
    cands = candidates(group, rows)
    grid_values = [c.search.values for c in group.candidates]
    out = []
    for c in cands:
        mine = sorted(
            (r for r in rows if r["config_hash"] == c.identity_hash and r["decision"] != "added"),
            key=lambda r: r["rung"],
        )
        chosen = any(r["decision"] == "chosen" for r in mine)
        reached = [r for r in mine if r["dev_score"] is not None]
        out.append(
            {
                "dataset": group.key[0],
                "model": group.key[1],
                "method": group.key[2],
                "candidate": c.search.label(),
                "identity": c.identity_hash,
                "values": c.search.values,
                "added": c.search.values not in grid_values,
                "rung_scores": [(rungs[r["rung"]], r["dev_score"]) for r in reached],
                "dev_score": reached[-1]["dev_score"] if reached else None,
                "reached": rungs[reached[-1]["rung"]] if reached else 0.0,
                "train_seconds": max((r["train_seconds"] or 0.0 for r in mine), default=None),
                "lost_seconds": lost.get(c.identity_hash, 0.0),
                "chosen": chosen,
                "complete": any(r["decision"] == "chosen" for r in rows),
                "edge": (at_edge(c.search.values, [x.search.values for x in cands]) + notes) if chosen else [],
            }
        )
    return out


def _lost_seconds(results: list[dict]) -> dict[str, float]:
    """Each candidate's training redone after kills (identity -> seconds), from its search's stored rows, as its
    run last said it: paused at a rung (paused.json) or done (resources). Not in its training time: listed apart,
    as for every cell."""
    out = {}
    for r in results:
        if r["status"] not in ("paused", "done"):
            continue
        said = json.loads((r["metrics"] if r["status"] == "paused" else r["resources"]) or "{}")
        out[r["config_hash"]] = float(said.get("lost_seconds") or 0.0)
    return out
