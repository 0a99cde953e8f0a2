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
from pathlib import Path

from biotune.errors import BiotuneError

ENV_VAR = "BIOTUNE_DATA"
_PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # src/biotune/data/location.py -> repo root


def default_candidates() -> list[Path]:
    """Where biotune looks for the BLURB files: ../shared beside the working folder or the package, then where
    `biotune data fetch` writes them."""
    return [Path.cwd() / ".." / "shared" / "data" / "blurb", _PACKAGE_ROOT / ".." / "shared" / "data" / "blurb",
            cache_dir() / "blurb"]


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


def local_file(location: str, relative: str) -> Path | None:
    """The local path of `relative` under `location`, fetching it first when `location` is a URL.
    None when the file does not exist there."""
    if not is_url(location):
        path = Path(location) / relative
        return path if path.is_file() else None
    target = cache_dir() / "data" / hashlib.sha256(location.encode()).hexdigest()[:16] / relative
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


def _http_fetch(url: str, dest: Path, timeout: float = 60, hint: str = NO_NETWORK_HINT) -> bool:
    """Download `url` to `dest` (the standard library, no extra dependency); False on 404, a one-line error when
    the host cannot be reached."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return True
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise BiotuneError(f"cannot fetch {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise BiotuneError(f"cannot fetch {url} ({reason}): {hint}") from None
