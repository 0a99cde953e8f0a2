"""Property-based fuzzing of dataset files (Hypothesis): generated dataset YAML files and data files (CSV, TSV,
CoNLL, JSONL; random encodings, empty, header-only and ragged files, random bytes, random paths and URLs, aliases,
symlinks out of the folder) through `biotune data show`. Every outcome must be a valid load or a one-line error
naming the file; never a traceback; and nothing read or written outside the dataset's folder and the cache, as
the file system shows it: every file Python opens is recorded (an audit hook), the sandbox around the dataset is
compared before and after, and a canary file outside the folder must never appear in the output.

The default suite runs the fast profile (derandomized: the same cases every run); by hand, the long one:

    BIOTUNE_FUZZ=long BIOTUNE_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz_datasets.py -s
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import cli_here

LONG = os.environ.get("BIOTUNE_FUZZ") == "long"
EXAMPLES = int(os.environ.get("BIOTUNE_FUZZ_EXAMPLES", 5000 if LONG else 300))
CANARY = "CANARY-7f3a91"
UNREACHABLE = "https://127.0.0.1:9/data"  # the discard port: refused at once, no network needed

# -- what Python opens while a case runs (audit hooks cannot be removed: one for the module, switched by a list) --
_OPENED: list | None = None


def _audit(event, args):
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path, mode, flags = args[0], args[1], args[2]
        write = (mode is not None and any(c in mode for c in "wax+")) or (
            mode is None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        _OPENED.append((os.fsdecode(path), bool(write)))


sys.addaudithook(_audit)

# -- the generated cases ----------------------------------------------------------------------------------------

FORMATS = {  # format: (task fields of the dataset file, file extension, a valid file, its header)
    "csv": (
        {"task": "relation", "labels": {"1": "yes", "0": "no"}, "negative": "0"},
        "csv",
        'id,text,label\n1,The @GENE$ and @DISEASE$.,1\n2,"No @GENE$, no @DISEASE$.",0\n',
        "id,text,label\n",
    ),
    "tsv": (
        {"task": "relation", "labels": {"1": "yes", "0": "no"}, "negative": "0"},
        "tsv",
        "id\ttext\tlabel\n1\tThe @GENE$ and @DISEASE$.\t1\n2\tNone @GENE$ @DISEASE$.\t0\n",
        "id\ttext\tlabel\n",
    ),
    "conll": (
        {"task": "ner", "tags": ["B", "I", "O"], "entity": "chemical"},
        "conll",
        "Aspirin\tB\nhelps\tO\n\nCaffeine\tB\nacid\tI\n",
        "",
    ),
    "jsonl": (
        {"task": "relation", "labels": {"1": "yes", "0": "no"}, "negative": "0"},
        "jsonl",
        '{"id": "1", "text": "@GENE$ @DISEASE$", "label": "1"}\n{"id": "2", "text": "x", "label": "0"}\n',
        "",
    ),
}
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]


def _mostly(plain, hostile, hostile_in: int = 4):
    """`plain` in (hostile_in - 1) of hostile_in draws, else `hostile` (shrinking leads to plain)."""
    return st.integers(0, hostile_in - 1).flatmap(lambda i: hostile if i == hostile_in - 1 else plain)


def _roots(outside: Path):
    plain = st.sampled_from([None, ".", "data", "data/", "./data"])
    return _mostly(
        plain,
        st.sampled_from(
            [
                "../outside",
                str(outside),
                "/",
                "/etc",
                "~",
                "file:///proc/self/",
                outside.as_uri(),
                UNREACHABLE,
                "http://127.0.0.1:9/d",
                "s3://bucket/d",
                "ftp://127.0.0.1:9/d",
                "zip://x",
                "linked",
            ]
        )
        | st.text(max_size=12),
    )


def _split_names(ext: str, outside: Path):
    plain = st.sampled_from([f"test.{ext}", f"data/test.{ext}", f"./test.{ext}"])
    return _mostly(
        plain,
        st.sampled_from(
            [
                f"../outside/secret.{ext}",
                str(outside / f"secret.{ext}"),
                "/etc/passwd",
                "/proc/self/environ",
                f"sub/../test.{ext}",
                "..",
                ".",
                "",
                "~/x",
                "C:\\x",
                f"{UNREACHABLE}/test.{ext}",
                "file:///etc/passwd",
                f"link.{ext}",
                f"data/link.{ext}",
                "environ",
                "data",
            ]
        )
        | st.text(max_size=16),
    )


@st.composite
def _content(draw, fmt: str) -> bytes:
    _, _, valid, header = FORMATS[fmt]
    kind = draw(
        _mostly(
            st.just("valid"), st.sampled_from(["empty", "header", "ragged", "bytes", "encoded", "nul", "mutated"]), 3
        )
    )
    if kind == "valid":
        return valid.encode()
    if kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"\n\n\n", b" \t \n"]))
    if kind == "header":
        return header.encode()
    if kind == "ragged":
        lines = valid.splitlines()
        cut = draw(st.integers(0, max(0, len(lines) - 1)))
        lines[cut] = lines[cut] + draw(st.sampled_from(["\tx", ",x", "", "\t", '"']))
        return "\n".join(lines).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "encoded":
        text = valid.replace("Aspirin", "Aspirïn").replace("The", "Thé")
        return text.encode(draw(st.sampled_from(ENCODINGS)))
    if kind == "nul":
        return valid.encode().replace(b"\n", b"\x00", 1)
    i = draw(st.integers(0, len(valid)))  # mutated: random text spliced into a valid file
    return (valid[:i] + draw(st.text(max_size=30)) + valid[i:]).encode("utf-8", "surrogatepass")


@st.composite
def _case(draw, outside: Path) -> dict:
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    task_fields, ext, _, _ = FORMATS[fmt]
    body = {
        "name": draw(
            _mostly(st.just("fuzz"), st.sampled_from(["fuzz.x", "../up", "", "gad"]) | st.text(max_size=8), 8)
        ),
        **task_fields,
        "source": {
            "format": draw(_mostly(st.just(fmt), st.sampled_from(["csv", "tsv", "json", "hf"]), 8)),
            "splits": {
                draw(_mostly(st.just("test"), st.sampled_from(["dev", "train", "valid"]), 6)): draw(
                    _split_names(ext, outside)
                )
            },
            "header": fmt in ("csv", "tsv"),
        },
    }
    root = draw(_roots(outside))
    if root is not None:
        body["source"]["root"] = root
    if draw(st.integers(0, 4)) == 4:  # a field of a random type where a known one is expected
        key = draw(st.sampled_from(["labels", "negative", "tags", "fields", "metric", "documents", "entity", "task"]))
        body[key] = draw(
            st.one_of(st.none(), st.integers(), st.text(max_size=10), st.lists(st.text(max_size=4), max_size=3))
        )
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
    yaml_kind = draw(_mostly(st.just("plain"), st.sampled_from(["bomb", "alias", "bytes", "latin-1", "deep"]), 4))
    if yaml_kind == "bomb":
        text = (
            "a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 9))
            + text.replace("name:", "description: *a8\nname:", 1)
        )
    elif yaml_kind == "alias":
        text = 'x: &lab {"1": "yes", "0": "no"}\n' + text.replace("labels:", "labels: *lab\nlabels_was:", 1)
    elif yaml_kind == "deep":
        text += "description: " + "[" * 200 + "]" * 200 + "\n"
    data = text.encode("latin-1", "replace") if yaml_kind == "latin-1" else text.encode()
    if yaml_kind == "latin-1":
        data = data.replace(b"fuzz", b"f\xfczz")
    if yaml_kind == "bytes":
        data = draw(st.binary(max_size=300))
    return {
        "fmt": fmt,
        "ext": ext,
        "yaml": data,
        "split": draw(_mostly(st.just("test"), st.sampled_from(["dev", "train"]), 6)),
        "files": {f: draw(_content(fmt)) for f in (f"test.{ext}", f"data/test.{ext}")},
        "link": draw(st.integers(0, 3)) == 3,
    }


# -- the property -----------------------------------------------------------------------------------------------


def _tree(folder: Path) -> dict:
    return (
        {
            str(p.relative_to(folder)): (p.is_symlink(), p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in folder.rglob("*")
        }
        if folder.exists()
        else {}
    )


def test_generated_dataset_files_load_or_fail_in_one_line_and_stay_in_their_place(tmp_path_factory, monkeypatch):
    sandbox = tmp_path_factory.mktemp("fuzz")
    outside = sandbox / "outside"
    outside.mkdir()
    for ext in ("csv", "tsv", "conll", "jsonl", "yaml"):
        (outside / f"secret.{ext}").write_text(
            FORMATS.get(ext, FORMATS["csv"])[2]
            .replace("The", CANARY)
            .replace("Aspirin", CANARY)
            .replace("GENE", CANARY)
        )
    cache = sandbox / "cache"
    monkeypatch.setenv("BIOTUNE_CACHE", str(cache))
    monkeypatch.delenv("BIOTUNE_DATA_ROOTS", raising=False)
    monkeypatch.delenv("BIOTUNE_ALLOW_FILE_URLS", raising=False)
    forbidden = ["/etc/passwd", "/proc/self/environ", "/etc/hostname"]
    counter, outcomes, began = itertools.count(), {"loaded": 0, "one-line error": 0}, time.perf_counter()
    errors: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not LONG,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_case(outside))
    def check(case):
        global _OPENED
        folder = sandbox / f"ds{next(counter)}"
        (folder / "data").mkdir(parents=True)
        for rel, data in case["files"].items():
            (folder / rel).write_bytes(data)
        if case["link"]:
            for rel in (f"link.{case['ext']}", f"data/link.{case['ext']}"):
                (folder / rel).symlink_to(outside / f"secret.{case['ext']}")
            (folder / "linked").symlink_to(outside, target_is_directory=True)
        path = folder / "fuzz.yaml"
        path.write_bytes(case["yaml"])
        before = {"outside": _tree(outside), "top": sorted(os.listdir(sandbox)), "folder": _tree(folder)}
        _OPENED = []
        try:
            r = cli_here("data", "show", path, "--split", case["split"], "-n", "2")
        finally:
            opened, _OPENED = _OPENED, None
        shown = r.stdout + r.stderr
        assert CANARY not in shown, shown
        assert r.returncode in (0, 2), (r.returncode, shown)
        if r.returncode == 0:
            outcomes["loaded"] += 1
            assert r.stderr == "", r.stderr
        else:
            outcomes["one-line error"] += 1
            errors.append(r.stderr.replace(str(folder), "<ds>")[:110])
            lines = r.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("biotune: error: "), r.stderr
            assert any(s in lines[0] for s in (str(path), str(folder.resolve()), str(cache), UNREACHABLE)), lines[0]
        own = (str(folder.resolve()) + os.sep, str(cache) + os.sep)
        for p, write in opened:  # in the sandbox, only its own folder and the cache; nothing the generator aims at
            real = os.path.realpath(p)
            assert not any(real == f or real.startswith(f + os.sep) for f in forbidden), (p, case)
            assert not real.startswith(str(sandbox) + os.sep) or real.startswith(own), (p, case)
            if write and "__pycache__" not in p:
                assert real.startswith(own), (p, case)
        assert _tree(outside) == before["outside"]
        assert sorted(os.listdir(sandbox)) in (before["top"], sorted({*before["top"], "cache"}))
        assert _tree(folder) == before["folder"]  # nothing written in the dataset's folder either
        for p in cache.rglob("*") if cache.exists() else []:
            rel = p.relative_to(cache).parts
            assert rel[0] == "data" and (len(rel) == 1 or len(rel[1]) == 16), p

    check()
    took = time.perf_counter() - began
    if os.environ.get("BIOTUNE_FUZZ_VERBOSE"):
        import collections

        print(*collections.Counter(e.split(": ", 2)[-1][:70] for e in errors).most_common(25), sep="\n")
    print(f"\nfuzzed {EXAMPLES} generated dataset files in {took:.1f} s: {outcomes}")
    assert sum(outcomes.values()) >= min(EXAMPLES, 100) and outcomes["loaded"] > 0 and outcomes["one-line error"] > 0
