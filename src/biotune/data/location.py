"""Where the BLURB files are: `--data-dir`, else `$BIOTUNE_DATA`, else `../shared/data/blurb` when it exists, else
`~/.cache/biotune/blurb` (what `biotune data fetch` writes).

A data location may also be a URL (`https://...`, `hf://datasets/<org>/<repo>/...`, `file://...`, anything
fsspec opens): files are then fetched once into the cache (`$BIOTUNE_CACHE`, default `~/.cache/biotune`)
and read from there with the same readers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import quote, urlsplit, urlunsplit

from biotune.errors import BiotuneError

ENV_VAR = "BIOTUNE_DATA"
_PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # src/biotune/data/location.py -> repo root


def default_candidates() -> list[Path]:
    """Where biotune looks for the BLURB files: ../shared beside the working folder or the package, then where
    `biotune data fetch` writes them."""
    return [
        Path.cwd() / ".." / "shared" / "data" / "blurb",
        _PACKAGE_ROOT / ".." / "shared" / "data" / "blurb",
        cache_dir() / "blurb",
    ]


def cache_dir() -> Path:
    return Path(os.environ.get("BIOTUNE_CACHE", Path.home() / ".cache" / "biotune"))


def is_url(location: str) -> bool:
    return "://" in location


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> str:
    """The data location to use, as a local path or a URL; a clear error when there is none."""
    if data_dir is not None:
        source = "--data-dir"
    elif os.environ.get(ENV_VAR):
        data_dir, source = os.environ[ENV_VAR], f"${ENV_VAR}"
    else:
        for candidate in default_candidates():
            if candidate.is_dir():
                return str(candidate.resolve())
        raise BiotuneError(
            "no BLURB data directory found: run `biotune data fetch`, pass --data-dir PATH or set BIOTUNE_DATA "
            f"(looked for {', '.join(str(c) for c in default_candidates())})"
        )
    data_dir = str(data_dir)
    if is_url(data_dir):
        return data_dir.rstrip("/")
    if not Path(data_dir).is_dir():
        raise BiotuneError(
            f"data directory {data_dir} (from {source}) does not exist; point it at the folder that "
            "holds BC5CDR-chem/, GAD/, pubmedqa/, ..."
        )
    return str(Path(data_dir).resolve())


# -- what a dataset file may read -----------------------------------------------------------------------------
# A dataset file is data anyone can hand a user, so it reads only below its own folder, below folders the user
# names in $BIOTUNE_DATA_ROOTS (the BLURB location for `root: blurb`), or from https:// (and hf://) URLs; a
# file:// URL reads the local disk, so it needs the user's explicit $BIOTUNE_ALLOW_FILE_URLS=1 (a local mirror).

ROOTS_ENV = "BIOTUNE_DATA_ROOTS"
FILE_URLS_ENV = "BIOTUNE_ALLOW_FILE_URLS"
REMOTE_SCHEMES = ("https://", "hf://")


def url_problem(url: str) -> str | None:
    """Why a dataset file may not read from `url`; None when it may."""
    if url.startswith(REMOTE_SCHEMES):
        return None
    scheme = url.split("://", 1)[0]
    if scheme == "file":
        if os.environ.get(FILE_URLS_ENV) == "1":
            return None
        return (
            f"a file:// URL reads the local disk outside the dataset's folder: put the files beside the dataset "
            f"file (root: a folder), or for a local mirror you trust set {FILE_URLS_ENV}=1"
        )
    return f"only https:// (or hf://) URLs are read, not {scheme[:20]}://"


def name_problem(name: str) -> str | None:
    """Why a split's file name may not be used (it must stay below its root); None when it may."""
    if not name.strip():
        return "names no file"
    if not name.isprintable():
        return "holds a control character: name the file in plain characters"
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(name).drive or name.startswith("~"):
        return "is an absolute path: name the file relative to source.root"
    if ".." in posix.parts:
        return "goes up a folder (..): name the file below source.root, or move source.root"
    if all(part == "." for part in posix.parts):
        return "names no file"
    return None


def data_roots() -> list[Path]:
    """The folders the user allows any dataset file to read ($BIOTUNE_DATA_ROOTS, separated by os.pathsep)."""
    return [Path(p).expanduser().resolve() for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]


def within(path: Path, folders) -> bool:
    """Whether `path`, symlinks followed, lies in one of `folders`."""
    real = Path(path).resolve()
    return any(real == f or f in real.parents for f in (Path(x).resolve() for x in folders))


def local_file(location: str, relative: str, reach: tuple[str, ...] = ()) -> Path | None:
    """The local path of `relative` under `location`, fetching it first when `location` is a URL (into the cache
    entry of that URL, never outside it). None when the file does not exist there. `reach`: the folders a local
    file must lie in, symlinks followed (a user's dataset file; empty: no check, the BLURB files)."""
    if not is_url(location):
        path = Path(location) / relative
        if not path.is_file():
            return None
        if reach and not within(path, reach):
            raise BiotuneError(
                f"{path} leads (through a symlink) to {path.resolve()}, outside the dataset's folder: "
                f"copy the file there, or allow its folder with {ROOTS_ENV}"
            )
        return path
    entry = cache_dir() / "data" / hashlib.sha256(location.encode()).hexdigest()[:16]
    target = entry / relative
    problem = name_problem(relative) or (None if within(target, [entry]) else "leaves the cache")
    if problem:
        raise BiotuneError(f"{location}/{relative}: the file name {problem}")
    if target.is_file() or download(f"{location}/{relative}", target):
        return target
    return None


def download(url: str, dest: Path, hint: str | None = None) -> bool:
    """Fetch `url` (https with the standard library, anything else through fsspec) to `dest` via a `.part` file;
    False when the source has no such file. Nothing half-fetched is kept, nor a folder made only for it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        if url.startswith(("http://", "https://")):
            found = _http_fetch(url, tmp, hint=hint or NO_NETWORK_HINT)
        else:
            import fsspec

            fs, fs_path = fsspec.core.url_to_fs(url)
            found = fs.exists(fs_path)
            if found:
                with fs.open(fs_path, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if not any(dest.parent.iterdir()):
            dest.parent.rmdir()
        raise
    if found:
        os.replace(tmp, dest)
    return found


NO_NETWORK_HINT = "no network here? Fetch the file elsewhere and point the dataset's source.root at a local copy"


def _ascii_url(url: str) -> str:
    """`url` with its path and query percent-encoded as UTF-8 (what is encoded already stays as it is) and an
    international host name in IDNA."""

    parts = urlsplit(url)
    host = parts.netloc.encode("idna").decode("ascii") if not parts.netloc.isascii() else parts.netloc
    return urlunsplit(
        (parts.scheme, host, quote(parts.path, safe="/%"), quote(parts.query, safe="=&%"), parts.fragment)
    )


def _http_fetch(url: str, dest: Path, timeout: float = 60, hint: str = NO_NETWORK_HINT) -> bool:
    """Download `url` to `dest` (the standard library, no extra dependency); False on 404, a one-line error when
    the host cannot be reached."""

    try:
        # a split or folder name may hold any character: sent percent-encoded (http.client takes ASCII only)
        with urllib.request.urlopen(_ascii_url(url), timeout=timeout) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return True
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise BiotuneError(f"cannot fetch {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, UnicodeError) as e:
        reason = getattr(e, "reason", e)
        raise BiotuneError(f"cannot fetch {url} ({reason}): {hint}") from None
