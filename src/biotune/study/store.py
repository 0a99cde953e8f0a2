"""The results store: one row per (study, dataset, model, method, seed, identity), in an embedded SQLite file
by default or any SQLAlchemy URL (e.g. postgresql://...). The identity (`config_hash`, biotune.identity) is
everything that decides a result: a cell whose settings, data, model or scoring changed is a new row, and the
old one stays as history (never reported). Each write is one transaction; a cell is claimed before it runs, so
concurrent workers never run or write the same cell twice.
"""

from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from biotune.errors import BiotuneError
from biotune.identity import hash_of, upgrade
from biotune.summary import RunSummary

metadata = MetaData()
results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study", String(200), nullable=False),
    Column("dataset", String(100), nullable=False),
    Column("model", String(200), nullable=False),
    Column("method", String(100), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # running, done, failed, interrupted, paused (a search's rung)
    Column("worker", String(200)),  # host:pid that claimed the cell
    Column("task", String(50)),
    Column("score", Float),  # on the evaluated split (test)
    Column("dev_score", Float),  # on dev: what a search and the recommendations choose by
    Column("metrics", Text),  # JSON
    Column("resources", Text),  # JSON
    Column("config", Text),  # JSON: the identity (resolved experiment, data and model hashes, scoring version)
    Column("config_hash", String(32), nullable=False),  # the identity's hash
    Column("versions", Text),  # JSON
    Column("git_rev", String(64)),
    Column("output_dir", Text),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    UniqueConstraint("study", "dataset", "model", "method", "seed", "config_hash", name="one_row_per_identity"),
)
# an adaptive search's record (study/halving.py): each candidate's dev score at each rung it reached and what was
# decided there (continue, stop, chosen); a candidate added by range growth has its row before it runs
rungs = Table(
    "search_rungs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study", String(200), nullable=False),
    Column("dataset", String(100), nullable=False),
    Column("model", String(200), nullable=False),
    Column("method", String(100), nullable=False),
    Column("config_hash", String(32), nullable=False),  # the candidate's identity
    Column("candidate", Text, nullable=False),  # JSON: its search values
    Column("rung", Integer, nullable=False),
    Column("step", Integer),  # the optimizer step the rung ended at
    Column("dev_score", Float),  # the kept model's dev score up to that step (None: not reached yet)
    Column("train_seconds", Float),  # its training up to there (all rungs so far)
    Column("decision", String(20)),  # continue, stop, chosen; added (a range-growth candidate not yet run)
    Column("note", Text),
    Column("decided_at", DateTime(timezone=True)),
    UniqueConstraint("study", "dataset", "model", "method", "config_hash", "rung", name="one_row_per_rung"),
)
_COLUMNS = [c.name for c in results.columns]


def _now() -> datetime:
    return datetime.now(UTC)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this machine still runs (another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_state(worker: str | None) -> str:
    """Whether the worker that claimed a cell still runs: 'alive' or 'gone' (known for workers on this host),
    'unknown' (a worker on another machine: its claim is trusted unless the user reclaims it)."""
    if not worker:
        return "gone"
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return "unknown"
    try:
        return "alive" if process_alive(int(pid)) else "gone"
    except ValueError:
        return "gone"


def row_key(row) -> tuple[str, str, str, int]:
    """A stored row's grid key, as a study's cell has it (`Cell.key`): (dataset, model, method, seed)."""
    return row["dataset"], row["model"], row["method"], row["seed"]


def group_key(row) -> tuple[str, str, str]:
    """A stored row's (dataset, model, method): its configuration, a search's group (`SearchGroup.key`)."""
    return row["dataset"], row["model"], row["method"]


class Store:
    """`timeout`: seconds a write waits for another process's lock before it fails (with a clear error)."""

    def __init__(self, url: str, timeout: float = 60):
        self.url = url
        self.path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
        try:
            if self.path:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, connect_args={"timeout": timeout} if url.startswith("sqlite") else {})
            if url.startswith("sqlite"):
                _serialize_sqlite_writers(self.engine, timeout)
            with self._errors("open"):
                _upgrade(self.engine)
                metadata.create_all(self.engine)
                _rekey(self.engine)
        except BiotuneError:
            raise
        except (SQLAlchemyError, OSError, ModuleNotFoundError) as e:
            raise BiotuneError(f"cannot open the results store {url!r}: {str(e).splitlines()[0]}") from None

    @contextmanager
    def _errors(self, doing: str):
        """A store that cannot be read or written: one line naming the file and the fix. Every write is one
        transaction, so the rows already there are never lost or half-changed by a failed one."""
        try:
            yield
        except SQLAlchemyError as e:
            cause = str(getattr(e, "orig", None) or e).splitlines()[0]
            where = self.path or self.url
            low = cause.lower()
            if "locked" in low or "busy" in low:
                fix = (
                    "another process holds its lock (another `biotune study` writing it, or a program reading "
                    "it in a write transaction): let it finish or stop it, then rerun"
                )
            elif "not a database" in low or "malformed" in low or "corrupt" in low:
                fix = (
                    "it is damaged: restore it from a copy, or recover its rows (sqlite3 FILE .recover), or "
                    "give the study another `store:`; biotune wrote nothing to it"
                )
            elif "full" in low or "no space" in low:
                fix = "its disk is full: free space and rerun (the finished cells are kept)"
            else:
                fix = "check the file (or the database server) and rerun"
            raise BiotuneError(f"results store {where}: cannot {doing} ({cause}): {fix}") from None

    # -- cells -------------------------------------------------------------------------------------
    def _where(self, study: str, key: tuple, identity: str):
        dataset, model, method, seed = key
        return (
            (results.c.study == study)
            & (results.c.dataset == dataset)
            & (results.c.model == model)
            & (results.c.method == method)
            & (results.c.seed == seed)
            & (results.c.config_hash == identity)
        )

    def claim(self, study: str, key: tuple, identity: str, worker: str | None = None, reclaim: bool = False) -> bool:
        """Take a cell (its grid key and identity hash) to run: True if this worker should run it (no row, or a
        failed / abandoned one). A cell another machine's worker claimed is left to it unless `reclaim` (the
        user says that machine no longer runs the study: it was stopped or lost); a live worker on this machine
        keeps its cell either way."""
        worker = worker or worker_id()
        dataset, model, method, seed = key
        where = self._where(study, key, identity)
        with self._errors("claim a cell"), self.engine.begin() as conn:
            row = conn.execute(select(results.c.status, results.c.worker).where(where)).first()
            if row is None:
                try:
                    conn.execute(
                        insert(results).values(
                            study=study,
                            dataset=dataset,
                            model=model,
                            method=method,
                            seed=seed,
                            config_hash=identity,
                            status="running",
                            worker=worker,
                            started_at=_now(),
                        )
                    )
                except IntegrityError:
                    return False  # another worker inserted it first
                return True
            if row.status == "done":
                return False
            if row.status == "running" and row.worker != worker:
                holder = holder_state(row.worker)
                if holder == "alive" or (holder == "unknown" and not reclaim):
                    return False
            conn.execute(
                update(results).where(where).values(status="running", worker=worker, started_at=_now(), error=None)
            )
            return True

    def finish(
        self,
        study: str,
        key: tuple,
        identity: str,
        summary: RunSummary,
        identity_doc: dict,
        git_rev: str | None,
        output_dir: str | None = None,
    ):
        values = dict(
            status="done",
            task=summary.task,
            score=summary.score,
            dev_score=summary.dev_score,
            metrics=json.dumps(summary.metrics),
            resources=json.dumps(summary.resources),
            config=json.dumps(identity_doc, default=str),
            versions=json.dumps(summary.versions),
            git_rev=git_rev,
            output_dir=output_dir,
            finished_at=_now(),
            error=None,
        )
        self._update(study, key, identity, values)

    def pause(self, study: str, key: tuple, identity: str, info: dict):
        """Stopped at a rung of an adaptive search (`paused.json`): claimable again to go on from there."""
        self._update(
            study,
            key,
            identity,
            dict(
                status="paused",
                dev_score=info.get("dev_score"),
                metrics=json.dumps(info),
                finished_at=_now(),
                error=None,
            ),
        )

    # -- adaptive search ---------------------------------------------------------------------------
    def rung_rows(self, study: str) -> list[dict]:
        with self._errors("read its search rungs"), self.engine.connect() as conn:
            q = select(rungs).where(rungs.c.study == study).order_by(rungs.c.id)
            return [dict(r._mapping) for r in conn.execute(q)]

    def record_rung(self, study: str, group: tuple, identity: str, candidate: dict, rung: int, **values):
        """Insert or update one candidate's row at one rung (idempotent: a rerun writes the same values)."""
        dataset, model, method = group
        where = _rung_where(study, group, identity, rung)
        with self._errors("record a search rung"), self.engine.begin() as conn:
            if conn.execute(select(rungs.c.id).where(where)).first() is None:
                conn.execute(
                    insert(rungs).values(
                        study=study,
                        dataset=dataset,
                        model=model,
                        method=method,
                        config_hash=identity,
                        candidate=json.dumps(candidate),
                        rung=rung,
                        decided_at=_now(),
                        **values,
                    )
                )
            else:
                conn.execute(update(rungs).where(where).values(decided_at=_now(), **values))

    def forget_rung(self, study: str, group: tuple, identity: str, rung: int) -> None:
        """Remove one candidate's record at one rung (a failure retried by a later run of the study)."""
        with self._errors("update a search rung"), self.engine.begin() as conn:
            conn.execute(delete(rungs).where(_rung_where(study, group, identity, rung)))

    def fail(self, study: str, key: tuple, identity: str, error: str):
        self._update(study, key, identity, dict(status="failed", error=error[-4000:], finished_at=_now()))

    def interrupt(self, study: str, key: tuple, identity: str):
        """Stopped by the user (Ctrl-C): not a failure; the next run resumes it from its last checkpoint."""
        self._update(study, key, identity, dict(status="interrupted", error="interrupted", finished_at=_now()))

    def _update(self, study, key, identity, values):
        with self._errors(f"record a cell as {values['status']}"), self.engine.begin() as conn:
            conn.execute(update(results).where(self._where(study, key, identity)).values(**values))

    def held_elsewhere(self, study: str) -> list[dict]:
        """Cells of `study` running under a claim of another machine's worker (the rows, oldest claim first)."""
        rows = [r for r in self.rows(study, "running") if holder_state(r["worker"]) == "unknown"]
        return sorted(rows, key=lambda r: str(r["started_at"]))

    def rows(self, study: str | None = None, status: str | None = None) -> list[dict]:
        q = select(results)
        if study:
            q = q.where(results.c.study == study)
        if status:
            q = q.where(results.c.status == status)
        with self._errors("read its rows"), self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(results.c.id))]

    def done(self, study: str) -> dict[tuple, list[dict]]:
        """Grid key (dataset, model, method, seed) -> its finished rows, newest first (one per identity)."""
        out: dict[tuple, list[dict]] = {}
        for r in sorted(self.rows(study, "done"), key=lambda r: r["id"], reverse=True):
            out.setdefault(row_key(r), []).append(r)
        return out

    def dataframe(self, study: str | None = None):
        import pandas as pd

        rows = self.rows(study)
        for r in rows:
            for col in ("metrics", "resources", "versions"):
                for k, v in json.loads(r.pop(col) or "{}").items():
                    if not isinstance(v, (dict, list)):
                        r[f"{col}.{k}"] = v
            r.pop("config", None)
        return pd.DataFrame(rows)


def _rung_where(study: str, group: tuple, identity: str, rung: int):
    """The search_rungs row of one candidate (its group and identity) at one rung."""
    dataset, model, method = group
    return (
        (rungs.c.study == study)
        & (rungs.c.dataset == dataset)
        & (rungs.c.model == model)
        & (rungs.c.method == method)
        & (rungs.c.config_hash == identity)
        & (rungs.c.rung == rung)
    )


def _upgrade(engine) -> None:
    """A store written before identities keyed its rows by (study, dataset, model, method, seed) alone: rebuild
    the table with the identity in its key, every row kept (they are history: their identities differ)."""
    if "results" not in inspect(engine).get_table_names():
        return
    names = {u["name"] for u in inspect(engine).get_unique_constraints("results")}
    if "one_row_per_cell" not in names:
        return
    with engine.begin() as conn:  # one transaction (SQLite and PostgreSQL roll DDL back too): all or nothing
        old = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM results"))]
        conn.execute(text("DROP TABLE results"))
        metadata.create_all(conn)
        for r in old:
            r = {k: v for k, v in r.items() if k in _COLUMNS}
            r["config_hash"] = r.get("config_hash") or "unknown"
            for col in ("started_at", "finished_at"):
                if isinstance(r.get(col), str):
                    r[col] = datetime.fromisoformat(r[col])
            conn.execute(insert(results).values(**r))


def _rekey(engine) -> None:
    """Finished rows whose identity this biotune computes otherwise with the same meaning (biotune.identity.upgrade:
    an in-context result's identity without the training settings it never read) move to that identity, the
    hash before kept in their resources (`identity_before`): the same result, so it is neither rerun nor dropped
    as stale. A row whose new identity another row of its cell already has stays as it is (history)."""
    with engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(results).where(results.c.status == "done"))]
        taken = {(*row_key(r), r["study"], r["config_hash"]) for r in rows}
        for r in rows:
            try:
                stored = json.loads(r["config"] or "{}")
            except ValueError:
                continue
            new = upgrade(stored)
            key = (*row_key(r), r["study"], hash_of(new))
            if new is stored or key in taken:
                continue
            resources = {**json.loads(r["resources"] or "{}"), "identity_before": r["config_hash"]}
            conn.execute(
                update(results)
                .where(results.c.id == r["id"])
                .values(config=json.dumps(new, default=str), config_hash=key[-1], resources=json.dumps(resources))
            )
            taken.add(key)


def _serialize_sqlite_writers(engine, timeout: float = 60) -> None:
    """SQLite: WAL (readers never block) and BEGIN IMMEDIATE (a write transaction takes the lock when it
    starts, so two claims can't both read 'free' and then both write)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _):
        dbapi_conn.isolation_level = None  # let the events below issue BEGIN
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
