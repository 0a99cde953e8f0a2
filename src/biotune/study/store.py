"""The results store: one row per (study, dataset, model, method, seed), in an embedded SQLite file by
default or any SQLAlchemy URL (e.g. postgresql://...). Each write is one transaction; a cell is claimed
before it runs, so concurrent workers never run or write the same cell twice.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import (Column, DateTime, Float, Integer, MetaData, String, Table, Text, UniqueConstraint,
                        create_engine, event, insert, select, update)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from biotune.errors import BiotuneError

metadata = MetaData()
results = Table(
    "results", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("study", String(200), nullable=False),
    Column("dataset", String(100), nullable=False),
    Column("model", String(200), nullable=False),
    Column("method", String(100), nullable=False),
    Column("seed", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # running, done, failed
    Column("worker", String(200)),  # host:pid that claimed the cell
    Column("task", String(50)),
    Column("score", Float),
    Column("metrics", Text),  # JSON
    Column("resources", Text),  # JSON
    Column("config", Text),  # JSON, the resolved experiment
    Column("config_hash", String(32)),
    Column("versions", Text),  # JSON
    Column("git_rev", String(64)),
    Column("output_dir", Text),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    UniqueConstraint("study", "dataset", "model", "method", "seed", name="one_row_per_cell"),
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str | None) -> bool:
    """Whether the worker that claimed a cell still runs (known only for workers on this host)."""
    if not worker:
        return False
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's worker: trust its claim
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


class Store:
    def __init__(self, url: str):
        self.url = url
        try:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, connect_args={"timeout": 60} if url.startswith("sqlite") else {})
            if url.startswith("sqlite"):
                _serialize_sqlite_writers(self.engine)
            metadata.create_all(self.engine)
        except (SQLAlchemyError, OSError, ModuleNotFoundError) as e:
            raise BiotuneError(f"cannot open the results store {url!r}: {str(e).splitlines()[0]}") from None

    # -- cells -------------------------------------------------------------------------------------
    def claim(self, study: str, key: tuple, worker: str | None = None) -> bool:
        """Take a cell to run: True if this worker should run it (no row, or a failed / abandoned one)."""
        worker = worker or worker_id()
        dataset, model, method, seed = key
        where = ((results.c.study == study) & (results.c.dataset == dataset) & (results.c.model == model)
                 & (results.c.method == method) & (results.c.seed == seed))
        with self.engine.begin() as conn:
            row = conn.execute(select(results.c.status, results.c.worker).where(where)).first()
            if row is None:
                try:
                    conn.execute(insert(results).values(study=study, dataset=dataset, model=model, method=method,
                                                        seed=seed, status="running", worker=worker, started_at=_now()))
                except IntegrityError:
                    return False  # another worker inserted it first
                return True
            if row.status == "done" or (row.status == "running" and row.worker != worker and _alive(row.worker)):
                return False
            conn.execute(update(results).where(where).values(status="running", worker=worker, started_at=_now(),
                                                            error=None))
            return True

    def finish(self, study: str, key: tuple, summary: dict, config: dict, config_hash: str, git_rev: str | None):
        dataset, model, method, seed = key
        values = dict(
            status="done", task=summary.get("task"), score=summary["metrics"]["score"],
            metrics=json.dumps(summary["metrics"]), resources=json.dumps(summary["resources"]),
            config=json.dumps(config, default=str), config_hash=config_hash,
            versions=json.dumps(summary.get("versions", {})), git_rev=git_rev,
            output_dir=config.get("output_dir"), finished_at=_now(), error=None,
        )
        self._update(study, key, values)

    def fail(self, study: str, key: tuple, error: str):
        self._update(study, key, dict(status="failed", error=error[-4000:], finished_at=_now()))

    def _update(self, study, key, values):
        dataset, model, method, seed = key
        with self.engine.begin() as conn:
            conn.execute(update(results).where(
                (results.c.study == study) & (results.c.dataset == dataset) & (results.c.model == model)
                & (results.c.method == method) & (results.c.seed == seed)).values(**values))

    def rows(self, study: str | None = None, status: str | None = None) -> list[dict]:
        q = select(results)
        if study:
            q = q.where(results.c.study == study)
        if status:
            q = q.where(results.c.status == status)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(results.c.id))]

    def done_keys(self, study: str) -> set[tuple]:
        return {(r["dataset"], r["model"], r["method"], r["seed"]) for r in self.rows(study, "done")}

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


def _serialize_sqlite_writers(engine) -> None:
    """SQLite: WAL (readers never block) and BEGIN IMMEDIATE (a write transaction takes the lock when it
    starts, so two claims can't both read 'free' and then both write)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _):
        dbapi_conn.isolation_level = None  # let the events below issue BEGIN
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA busy_timeout=60000")

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
