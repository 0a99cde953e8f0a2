"""Atomic file writes (a reader never sees a half-written results file), complete checkpoints, and a full disk
said in one line."""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; a result file is as readable as any other
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    atomic_write_text(
        path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
    )


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def checkpoint_complete(folder: str | Path) -> str | None:
    """None if a Trainer checkpoint folder is whole, else what is wrong: its state (written last) missing or not
    JSON, a safetensors file shorter or longer than its header says, a torch-saved file (optimizer, scheduler,
    RNG state) whose zip directory is unreadable (a truncated file has none)."""
    folder = Path(folder)
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return "trainer_state.json is not valid JSON"
    for f in sorted(folder.iterdir()):
        if f.suffix == ".safetensors":
            problem = _safetensors_problem(f)
        elif f.suffix in (".pt", ".pth", ".bin"):
            problem = None if zipfile.is_zipfile(f) else "not a complete torch file"
        else:
            continue
        if problem:
            return f"{f.name}: {problem}"
    return None


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > size - 8:
                return "truncated header"
            header = json.loads(f.read(n))
    except (struct.error, ValueError, UnicodeDecodeError):
        return "unreadable header"
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    return None if size == 8 + n + end else f"{size} bytes where its header says {8 + n + end}"


def _disk_full(e: BaseException, where: Path) -> bool:
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e).lower()
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "no space left" in text or "disk is full" in text:
            return True
        # torch.save's writer reports a failed write without the errno: a full disk if there is no room left
        if "write failed" in text and _free_bytes(where) < 64 << 20:
            return True
        e = e.__cause__ or e.__context__
    return False


def _free_bytes(where: Path) -> int:
    where = Path(where)
    while not where.exists() and where != where.parent:
        where = where.parent
    return shutil.disk_usage(where).free


@contextmanager
def disk_full_errors(where: str | Path):
    """A full disk while a checkpoint or a result is written: one line (BiotuneError) naming where and the fix.
    What was being written is not left half-done: results are written atomically, and a checkpoint counts only
    when complete (checkpoint_complete)."""
    from .errors import BiotuneError

    try:
        yield
    except BiotuneError:
        raise
    except Exception as e:
        if not _disk_full(e, Path(where)):
            raise
        free = _free_bytes(Path(where)) / 1e6
        raise BiotuneError(f"no space left on the disk of {where} ({free:.1f} MB free) while writing a checkpoint "
                           "or a result: free space (or set keep: none, fewer training.save_total_limit) and rerun; "
                           "it resumes from its last complete checkpoint") from None
