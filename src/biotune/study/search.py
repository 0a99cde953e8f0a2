"""Model selection on dev: a study's `search:` block.

    search:
      grid: {training.learning_rate: [1.0e-4, 3.0e-4, 1.0e-3]}        # every method that trains
      method:                                                           # per method key (any method)
        lora: {training.learning_rate: [1.0e-4, 1.0e-3], method.params.r: [8, 16]}
        few_shot: {method.params.shots: [1, 3, 5]}
      model: {minilm: {training.learning_rate: [2.0e-5, 5.0e-5]}}     # per model (its methods that train)
      model_method:                                                     # per model and method
        llama3: {fft: {training.learning_rate: [1.0e-5, 2.0e-5]}, lora: {training.learning_rate: [1.0e-4, 2.0e-4]}}

For each (dataset, model, method) the grid is the method's own published space (`Method.search_space`, with its
source; `defaults: false` leaves it out), then the global one, then the method's, then the model's, then the
model-and-method one (a field named again takes the later values: a model's learning rates win over a method's, as
the scale of a learning rate follows the model, and a pair's win over both); its candidates are every combination.
Each candidate runs on the search seed (`search.seed`; default one above the study's highest seed) and is scored
on dev with the dataset's own metric (`Experiment.dev_score`); the best candidate (ties: the first in grid order)
then runs every seed of the study anew. A search run is never a result: reused as one, the run that won the
search on dev would carry its luck into the reported mean (the winner's curse), so the search seed is not a
reported seed. The search's cost is every candidate's training time, added to the configuration's cost.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SearchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # experiment key -> values every trained configuration is searched over (e.g. training.learning_rate: [1e-4, 3e-4])
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    # per model name: key -> values, over the grid's
    model: dict[str, dict[str, list[Any]]] = Field(default_factory=dict)
    # per method key: key -> values, over the grid's (also for methods that do not train: method.params.shots)
    method: dict[str, dict[str, list[Any]]] = Field(default_factory=dict)
    # per model and method: key -> values, over all the above
    model_method: dict[str, dict[str, dict[str, list[Any]]]] = Field(default_factory=dict)
    seed: int | None = None  # the candidates' seed; default: one above the study's highest (never a reported seed)
    # halving (study/halving.py): candidates compared at each rung, the better `keep` go on from their checkpoints,
    # a numeric range grows at its edge; grid: every candidate trains its whole budget
    strategy: Literal["halving", "grid"] = "halving"
    rungs: list[float] = Field(default_factory=lambda: [0.25, 1.0])  # fractions of the budget; the last is 1
    # the share of a rung's candidates that go on (at least one; one kept is chosen there)
    keep: float = Field(1 / 3, gt=0, lt=1)
    grow: int = Field(2, ge=0)  # values added beyond an end of a numeric range, per field and direction
    # a method that trains is searched over its own published space (Method.search_space: learning rates with
    # their source) in each field the study names no values for; false: only what the study names
    defaults: bool = True

    @field_validator("rungs")
    @classmethod
    def _rungs(cls, v: list[float]) -> list[float]:
        if not v or v[-1] != 1 or any(not 0 < x <= 1 for x in v) or any(a >= b for a, b in zip(v, v[1:])):
            raise ValueError(
                f"{v}: increasing fractions of the training budget in (0, 1], the last 1 (e.g. [0.25, 1.0])"
            )
        return v

    @field_validator("grid")
    @classmethod
    def _values(cls, v):
        for name, values in v.items():
            if not values:
                raise ValueError(f"{name}: list at least one value")
        return v

    def grid_for(self, model: str, method: str, trains: bool, space: dict[str, list] | None = None) -> dict[str, list]:
        """The grid of (model, method): `space` (the method's own, where `defaults`), then the study's layers."""
        out = dict(space or {}) if trains and self.defaults else {}
        out.update(self.grid if trains else {})
        out.update(self.method.get(method, {}))
        if trains:
            out.update(self.model.get(model, {}))
        out.update(self.model_method.get(model, {}).get(method, {}))
        return {k: v for k, v in out.items() if v}


def kept(n: int, keep: float) -> int:
    """How many of `n` candidates scored at a rung successive halving keeps for the next: the share `keep`,
    rounded down, at least one."""
    return max(1, int(n * keep + 1e-9)) if n else 0


def rung_sizes(n: int, rungs: list[float], keep: float) -> list[int]:
    """How many of `n` candidates train to each rung when none fails: all to the first, then `kept` of those, until
    a rung keeps one: that one is chosen there (the rungs after it would compare nothing: study/halving.py), so
    none trains to the rungs after it. [0.25, 1.0] keeping a third of 3: [3, 0]."""
    sizes = [n]
    for _ in rungs[1:]:
        k = kept(sizes[-1], keep)
        sizes.append(k if k > 1 else 0)
    return sizes


def rung_steps(rungs: list[float]) -> list[float]:
    """The part of the budget trained from the rung before to each rung: [0.25, 1.0] -> [0.25, 0.75]."""
    return [f - before for f, before in zip(rungs, [0.0, *rungs[:-1]])]


def nested(values: dict[str, Any]) -> dict:
    """{'training.learning_rate': 1e-4} -> {'training': {'learning_rate': 1e-4}}"""
    out: dict = {}
    for dotted, value in values.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def candidates(grid: dict[str, list]) -> list[dict[str, Any]]:
    fields = list(grid)
    return [dict(zip(fields, combo)) for combo in itertools.product(*(grid[f] for f in fields))]


@dataclass
class SearchRef:
    """What a cell is in a search: its group (dataset, model, method key), its candidate's values, and whether it
    is a final cell (the chosen candidate, on a reported seed) rather than a search run."""

    group: tuple[str, str, str]
    values: dict[str, Any]
    index: int
    final: bool = False

    def label(self) -> str:
        return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in self.values.items())


@dataclass
class SearchGroup:
    key: tuple[str, str, str]
    seeds: list[int]  # the reported seeds: the chosen candidate runs each of them anew
    search_seed: int = 0  # the seed the candidates run on (not one of `seeds`)
    candidates: list = field(default_factory=list)  # the candidate cells, on the search seed
    make: Callable | None = None  # (values, index, seed) -> the final cell of that seed
    grid: dict = field(default_factory=dict)  # field -> the values the grid tries
    defaulted: str = ""  # where the fields the study named no values for came from (the method's search_source)
    strategy: str = "grid"  # grid or halving (SearchConfig.strategy)


def _row(cell, done: dict[tuple, list[dict]]) -> dict | None:
    """The finished store row of this cell's identity, if any."""
    return next((r for r in done.get(cell.key, []) if r["config_hash"] == cell.identity_hash), None)


def chosen(group: SearchGroup, done: dict[tuple, list[dict]]) -> tuple[int | None, list[float | None]]:
    """(index of the best candidate by dev score, every candidate's dev score); index None while a candidate
    has no finished result yet. `done`: Store.done()."""
    scores = []
    for c in group.candidates:
        row = _row(c, done)
        scores.append(None if row is None else row.get("dev_score"))
    if any(s is None for s in scores):
        return None, scores
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return best, scores


def final_cells(
    fixed: list, groups: list[SearchGroup], done: dict[tuple, list[dict]], halving_choice: Callable | None = None
) -> tuple[list, list]:
    """(the study's final cells: the cells without a search, and for every finished search its chosen candidate
    run anew on every reported seed; the groups still searching). `halving_choice(group)`: (index, values) an
    adaptive search chose (halving.choice), or None."""
    out, pending = list(fixed), []
    for g in groups:
        if g.strategy == "halving":
            pick = halving_choice(g) if halving_choice else None
        else:
            best, _ = chosen(g, done)
            pick = None if best is None else (best, g.candidates[best].search.values)
        if pick is None:
            pending.append(g)
            continue
        out += [g.make(pick[1], pick[0], seed) for seed in g.seeds]
    return out, pending


def at_edge(values: dict[str, Any], tried: list[dict[str, Any]]) -> list[str]:
    """The fields of `values` at the low or high end of what the search tried, for fields with at least 3
    distinct numeric values (['learning_rate: the highest tried']): a best value at the edge of its range says
    that a value beyond it, never tried, may be better still."""
    out = []
    for name, value in values.items():
        seen = (
            sorted({t[name] for t in tried if name in t}, key=float)
            if all(isinstance(t.get(name), int | float) and not isinstance(t.get(name), bool) for t in tried)
            else []
        )
        if len(seen) < 3:
            continue
        if value == seen[-1]:
            out.append(f"{name.split('.')[-1]}: the highest tried")
        elif value == seen[0]:
            out.append(f"{name.split('.')[-1]}: the lowest tried")
    return out


def summary(groups: list[SearchGroup], done: dict[tuple, list[dict]]) -> list[dict]:
    """One row per candidate: group, values, dev score, training seconds, whether chosen, and for the chosen
    one the fields at the edge of the grid (`at_edge`)."""
    rows = []
    for g in groups:
        best, scores = chosen(g, done)
        tried = [c.search.values for c in g.candidates]
        for i, (c, score) in enumerate(zip(g.candidates, scores)):
            row = _row(c, done)
            res = json.loads(row["resources"] or "{}") if row else {}
            rows.append(
                {
                    "dataset": g.key[0],
                    "model": g.key[1],
                    "method": g.key[2],
                    "candidate": c.search.label(),
                    "identity": c.identity_hash,
                    "values": c.search.values,
                    "dev_score": score,
                    "train_seconds": res.get("train_seconds"),
                    "lost_seconds": res.get("lost_seconds") or 0.0,
                    "chosen": best == i,
                    "complete": best is not None,
                    "edge": at_edge(c.search.values, tried) if best == i else [],
                }
            )
    return rows


def searched_on_other_seeds(groups: list[SearchGroup], rows: list[dict]) -> list[str]:
    """One line per search whose (dataset, model, method) the store holds runs of on a seed that is neither its
    search seed nor a reported one: an earlier search of it on another search seed (by default the search seed is
    one above the highest reported seed, so a study given one more seed searches anew). Those runs are not this
    search's and are never reused; the line says how to go on with them instead. `rows`: the study's store rows."""
    lines = []
    for g in groups:
        others = sorted(
            {r["seed"] for r in rows if (r["dataset"], r["model"], r["method"]) == g.key} - {g.search_seed, *g.seeds}
        )
        if others:
            seeds = ", ".join(map(str, others))
            lines.append(
                f"search {'/'.join(g.key)} runs on search seed {g.search_seed}; the store holds its runs on seed "
                f"{seeds} as well, which this search does not reuse (name `search.seed: {others[-1]}` in the "
                "study to go on with that search instead)"
            )
    return lines


def candidates_on_reported_seeds(groups: list[SearchGroup], rows: list[dict], rung_rows: list[dict]) -> list[str]:
    """One line per search whose store holds, on one of the study's reported seeds, a run that was a candidate of
    an adaptive search there (its identity has a rung row), or two or more of a grid search's values run on it: an
    earlier search ran on that seed, as it does when a study reporting seeds 0-2 (search seed 3 by default) is given
    seed 3. The chosen value's run on that seed would be that very candidate, the run that won on dev, reported as a
    result (the winner's curse): the study refuses. (An adaptive search's candidates of an earlier configuration
    count too, though their identities can no longer be reused: the ways out the line names still hold.)"""
    lines = []
    for g in groups:
        mine = [r for r in rows if (r["dataset"], r["model"], r["method"]) == g.key and r["seed"] in g.seeds]
        searched = {r["config_hash"] for r in rung_rows if (r["dataset"], r["model"], r["method"]) == g.key}
        seeds = {r["seed"] for r in mine if r["config_hash"] in searched}
        if g.strategy == "grid" and g.make is not None:  # no rung rows: two of its candidates' values on one seed
            for seed in set(g.seeds) - seeds:
                stored = {r["config_hash"] for r in mine if r["seed"] == seed}
                made = {g.make(c.search.values, c.search.index, seed).identity_hash for c in g.candidates}
                if stored and len(stored & made) >= 2:
                    seeds.add(seed)
        seeds = sorted(seeds)
        if seeds:
            lines.append(
                f"search {'/'.join(g.key)}: seed {', '.join(map(str, seeds))} is a reported seed, and the store holds "
                "this search's candidates run on it (an earlier search seed), so its chosen value's run there would "
                f"be a search run reported as a result; name `search.seed: {seeds[0]}` in the study to keep that "
                "search (and report other seeds), report a seed no search ran on, or run the study into a new "
                "store (output_dir)"
            )
    return lines
