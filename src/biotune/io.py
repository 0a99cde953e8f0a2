"""Atomic file writes (a reader never sees a half-written results file), complete checkpoints, and a full disk
said in one line."""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import tempfile
import time
import zipfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import BiotuneError

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
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


@contextmanager
def folder_lock(folder: str | Path, wait: float = 30.0):
    """Hold `folder` for this process while the block runs: an exclusive lock (flock) on the folder itself, which
    the operating system releases when the process ends however it ends (nothing is left behind in the folder), so
    no run can write into a folder that a live process (an orphaned cell of a killed study, a second `biotune run`)
    still writes into. A holder that is going away (an orphan stops within a second of its study) is waited for up
    to `wait` seconds; after that, one line says so. Where flock does not exist (Windows) the block runs
    unlocked."""

    try:
        import fcntl  # noqa: PLC0415  (POSIX only)
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BiotuneError(
                        f"{folder} is in use by another live process (a run, or a cell of a study "
                        "that still runs): wait for it to finish or stop it, or give another output "
                        "folder"
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock


def read_text(path: str | Path, binary_ok: bool = True) -> str:
    """A text file a user gave, as UTF-8 (a byte-order mark dropped), or one line (BiotuneError) naming the file,
    the line of the first byte that is not UTF-8 and how to convert it; with `binary_ok` False, a file holding NUL
    bytes (a binary file, or a system file such as /proc/self/environ) is refused too."""

    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        raise BiotuneError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}; it may be "
            f"{'UTF-16' if utf16 else 'Latin-1 / Windows-1252'}): save it as UTF-8, e.g. iconv -f "
            f"{'UTF-16' if utf16 else 'CP1252'} -t UTF-8 {Path(path).name} > converted"
        ) from None
    if not binary_ok and "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise BiotuneError(f"{path}:{line}: not a text file (it holds NUL bytes): name the data file itself")
    return text


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

    try:
        yield
    except BiotuneError:
        raise
    except Exception as e:
        if not _disk_full(e, Path(where)):
            raise
        free = _free_bytes(Path(where)) / 1e6
        raise BiotuneError(
            f"no space left on the disk of {where} ({free:.1f} MB free) while writing a checkpoint "
            "or a result: free space (or set keep: none, fewer training.save_total_limit) and rerun; "
            "it resumes from its last complete checkpoint"
        ) from None
