"""Careless and hostile input (the probes of issue "Careless and hostile input"), each case as the probe found it:
a dataset file that tries to read or write outside its place, a YAML bomb, bad data that used to be scored or to
end in a traceback, a study that is ambiguous, writers pointed through symlinks or at places they cannot write.
Every outcome is one line naming the file (and line and field where there is one) and the fix; nothing is read or
written outside the dataset's folder, the cache and the run folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from biotune.config import ExperimentConfig, load_experiment
from biotune.data import load_split
from biotune.data.dataset_file import load_dataset_file
from biotune.errors import BiotuneError
from biotune.study.grid import load_study
from conftest import cli_here, tmpfs
from test_export import TINY_LLAMA, TRAINING, _run

GAD_CSV = "id,text,label\n1,The @GENE$ gene and @DISEASE$.,1\n2,No link of @GENE$ to @DISEASE$.,0\n"


def _dataset(folder: Path, source: dict, name="probe", **fields) -> Path:
    """A relation dataset file in `folder` (its CSV splits, where the source names local files, beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    body = {
        "name": name,
        "task": "relation",
        "source": {"format": "csv", "header": True, **source},
        "labels": {"1": "yes", "0": "no"},
        "negative": "0",
        **fields,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _one_line(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder no one may write in: mode 555 for a user; for root (whom modes do not stop), a read-only tmpfs
    mounted there (skipped where root may not mount)."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with tmpfs(folder, "ro,size=1m"):
        yield folder


def _biotune(*args, env=None):
    """The CLI as a user runs it, in this process (its libraries already imported): an exception it lets through
    fails the test, as a traceback would be on a terminal."""
    return cli_here(*args, env=env)


def test_an_unknown_option_or_a_missing_argument_is_clicks_one_line_usage_error(tmp_path):
    for args in (("study", "configs/demo.yaml", "--bogus"), ("run",), ("data", "show")):
        r = _biotune(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
        assert "Error" in r.stderr and len([x for x in r.stderr.splitlines() if "Error" in x]) == 1, r.stderr


# -- 1. a dataset file's reach is its own ------------------------------------------------------------------------


def test_a_file_url_is_refused_and_nothing_of_the_environment_is_copied_or_echoed(tmp_path, monkeypatch):
    """The probe: root file:///proc/self/ with the split `environ` copied the process environment into the cache
    and printed its start. Now refused at the field, unless the user allows file:// URLs explicitly; even then the
    environment (NUL-separated) is refused as not a text file, and no part of it is printed."""
    monkeypatch.setenv("BIOTUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PROBE_SECRET", "hunter2-token")
    path = _dataset(tmp_path / "d", {"root": "file:///proc/self/", "splits": {"test": "environ"}})
    with pytest.raises(BiotuneError) as e:
        load_dataset_file(path)
    assert str(e.value).startswith(f"{path.resolve()}:") and "source.root" in str(e.value)
    assert "BIOTUNE_ALLOW_FILE_URLS" in str(e.value) and not (tmp_path / "cache").exists()
    r = _biotune("data", "show", path, "--split", "test")
    assert "source.root" in _one_line(r) and "hunter2" not in r.stderr + r.stdout
    r = _biotune(
        "data",
        "show",
        path,
        "--split",
        "test",
        env={"BIOTUNE_ALLOW_FILE_URLS": "1", "BIOTUNE_CACHE": str(tmp_path / "cache")},
    )
    line = _one_line(r)
    assert "not a text file" in line and "hunter2" not in r.stderr + r.stdout and "PATH=" not in line


@pytest.mark.parametrize(
    "source, field",
    [
        ({"root": "../../..", "splits": {"test": "etc/passwd"}}, "source.root"),
        ({"root": "/etc", "splits": {"test": "passwd"}}, "source.root"),
        ({"splits": {"test": "/etc/passwd"}}, "source.splits.test"),
        ({"splits": {"test": "../outside.csv"}}, "source.splits.test"),
        ({"splits": {"test": "sub/../../outside.csv"}}, "source.splits.test"),
        ({"root": "https://example.org/data", "splits": {"test": "../../../x.conll"}}, "source.splits.test"),
        ({"root": "http://example.org/data", "splits": {"test": "x.csv"}}, "source.root"),
        ({"root": "s3://bucket/data", "splits": {"test": "x.csv"}}, "source.root"),
        ({"splits": {"test": "file:///etc/passwd"}}, "source.splits.test"),
    ],
)
def test_local_reads_stay_in_the_dataset_files_folder(tmp_path, source, field):
    (tmp_path / "outside.csv").write_text(GAD_CSV)
    path = _dataset(tmp_path / "a" / "b", source)
    with pytest.raises(BiotuneError) as e:
        load_dataset_file(path)
    msg = str(e.value)
    assert msg.startswith(f"{path.resolve()}:") and f"field '{field}'" in msg and "\n" not in msg


def test_a_symlink_out_of_the_folder_is_refused_unless_the_user_allows_its_target(tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "test.csv").write_text(GAD_CSV)
    folder = tmp_path / "ds"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "test.csv").symlink_to(outside / "test.csv")  # a file inside that leads out
    (folder / "linked").symlink_to(outside, target_is_directory=True)  # a root inside that leads out
    by_file = _dataset(folder, {"root": "data", "splits": {"test": "test.csv"}}, name="by-file")
    by_root = _dataset(folder, {"root": "linked", "splits": {"test": "test.csv"}}, name="by-root")
    with pytest.raises(BiotuneError, match="through a symlink"):
        load_split(str(by_file), "test")
    with pytest.raises(BiotuneError, match=r"field 'source.root'.*BIOTUNE_DATA_ROOTS"):
        load_dataset_file(by_root)
    monkeypatch.setenv("BIOTUNE_DATA_ROOTS", str(outside))  # the user names the folder: now it may be read
    (folder / "by-file.yaml").touch()  # a new version of the file: read again with the new setting
    assert len(load_split(str(folder / "by-file.yaml"), "test")) == 2
    os.utime(by_root, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert len(load_split(str(by_root), "test")) == 2


def test_a_url_split_cannot_be_written_outside_its_cache_entry(tmp_path, monkeypatch):
    from biotune.data.location import local_file

    monkeypatch.setenv("BIOTUNE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(BiotuneError, match="goes up a folder"):
        local_file("https://example.org/data", "../../../x.conll")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "x.conll").exists()


# -- 2. YAML read with bounds -----------------------------------------------------------------------------------


def _bomb(levels=9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines)


def test_a_yaml_bomb_in_an_experiment_and_a_study_is_one_line_at_once(tmp_path):
    """The probe: billion-laughs aliases under model.random_init hung `biotune run` and `biotune study --dry-run`
    until killed at 4 GB."""
    bomb = _bomb()
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        f"{bomb}\ndataset: gad\nmethod: {{name: lora}}\nmodel:\n  family: causal\n  path: smollm2-135m\n"
        f"  random_init: {{hidden_size: *a8}}\n"
    )
    study = tmp_path / "study.yaml"
    study.write_text(
        f"{bomb}\nname: bomb\ndatasets: [gad]\nmethods: [lora]\nmodels:\n  - name: m\n    family: "
        "causal\n    path: smollm2-135m\n    random_init: {hidden_size: *a8}\n"
    )
    for args in (("run", exp), ("study", study, "--dry-run")):
        began = time.perf_counter()
        line = _one_line(_biotune(*args))
        assert time.perf_counter() - began < 30
        assert line.startswith(f"biotune: error: {args[1]}:") and "aliases" in line


@pytest.mark.parametrize(
    "text, needle",
    [
        ("a: &a [*a]\n", "recursive"),
        ("a:\n" + "".join("  " * i + f" k{i}:\n" for i in range(1, 60)) + "  " * 60 + " v: 1\n", "nested more than"),
        ("[" * 5000 + "]" * 5000, "nested"),
    ],
)
def test_recursive_and_deep_yaml_is_refused(tmp_path, text, needle):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    with pytest.raises(BiotuneError, match=needle) as e:
        load_experiment(path)
    assert str(e.value).startswith(str(path))


def test_a_huge_or_undecodable_yaml_file_is_one_line(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * (2 << 20))
    with pytest.raises(BiotuneError, match="at most"):
        load_experiment(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\ntask: relation\n".encode("latin-1"))
    with pytest.raises(BiotuneError, match=r"latin.yaml:1: not UTF-8 text \(byte 0xe9.*iconv"):
        load_dataset_file(latin)


# -- 3. bad data stops before the model loads ------------------------------------------------------------------


def _experiment(tmp_path, dataset: Path, **training) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "dataset": str(dataset),
                "model": TINY_LLAMA,
                "method": {"name": "lora"},
                "training": {**TRAINING, **training},
                "output_dir": str(tmp_path / "out"),
            }
        )
    )
    return path


@pytest.mark.parametrize(
    "split, content", [("test", ""), ("test", "id,text,label\n"), ("train", "\n\n"), ("dev", "id,text,label\n\n")]
)
def test_an_empty_or_header_only_split_is_one_line_and_nothing_is_written(tmp_path, split, content):
    """The probes: an empty test split trained and wrote 0.00 on 0 examples as a BLURB-comparable score; an empty
    train split died with an IndexError after loading the model."""
    folder = tmp_path / "ds"
    folder.mkdir()
    for s in ("train", "dev", "test"):
        (folder / f"{s}.csv").write_text(content if s == split else GAD_CSV)
    ds = _dataset(folder, {"splits": {s: f"{s}.csv" for s in ("train", "dev", "test")}})
    r = cli_here("run", _experiment(tmp_path, ds))
    assert r.returncode == 2 and f"{split}.csv: no examples in this file" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "fmt, name, data",
    [
        ("csv", "test.csv", "id,text,label\n1,caf\xe9 @GENE$ @DISEASE$,1\n".encode("latin-1")),
        ("conll", "test.conll", "Aspirin\tB\ncaf\xe9\tO\n".encode("cp1252")),
        ("csv", "test.csv", "id,text,label\n1,x,1\n".encode("utf-16")),
    ],
)
def test_a_file_that_is_not_utf8_names_its_line_and_how_to_convert_it(tmp_path, fmt, name, data):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / name).write_bytes(data)
    extra = {"task": "ner", "tags": ["B", "I", "O"], "entity": "chemical"} if fmt == "conll" else {}
    body = {
        "name": "enc",
        "task": "relation",
        "source": {"format": fmt, "splits": {"test": name}, "header": fmt == "csv"},
        "labels": {"1": "yes", "0": "no"},
        "negative": "0",
    }
    if extra:
        body = {**{k: v for k, v in body.items() if k not in ("labels", "negative")}, **extra}
    (folder / "enc.yaml").write_text(yaml.safe_dump(body))
    line = _one_line(_biotune("data", "show", folder / "enc.yaml", "--split", "test"))
    assert f"{name}:" in line and "not UTF-8" in line and "iconv" in line
    assert ("UTF-16" in line) == (data[:2] in (b"\xff\xfe", b"\xfe\xff"))


def test_two_labels_with_one_answer_text_are_refused(tmp_path):
    path = _dataset(
        tmp_path,
        {"splits": {"test": "test.csv"}},
        labels={"associated": "yes", "not associated": "Yes"},
        negative="not associated",
    )
    with pytest.raises(BiotuneError, match="field 'labels'.*same answer text") as e:
        load_dataset_file(path)
    assert str(e.value).startswith(f"{path.resolve()}:")


def test_a_loss_that_becomes_nan_stops_the_run_with_one_line_and_no_result(tmp_path):
    """The probe: a learning rate of 1e308 trained to a NaN loss and wrote a result with no word."""
    cfg = ExperimentConfig(
        dataset="gad",
        model=TINY_LLAMA,
        method={"name": "lora"},
        eval={"limit": 2},
        training={**TRAINING, "learning_rate": 1e308, "max_steps": 4, "logging_steps": 1},
        output_dir=str(tmp_path / "out"),
    )
    from biotune.train import run_experiment

    with pytest.raises(BiotuneError, match=r"loss became nan at step \d+: lower the learning rate"):
        run_experiment(cfg, progress=False)
    assert not (tmp_path / "out" / "metrics.json").exists()


# -- 4. studies refuse ambiguity --------------------------------------------------------------------------------


def _study(tmp_path, **fields) -> Path:
    body = {
        "name": "amb",
        "datasets": ["gad"],
        "models": [{"name": "tiny-llama", **TINY_LLAMA}],
        "methods": ["lora"],
        "seeds": [0],
        "output_dir": str(tmp_path / "out"),
        **fields,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@pytest.mark.parametrize(
    "fields, needle",
    [
        ({"methods": ["lora", {"name": "lora", "params": {"r": 4}}]}, r"field 'methods.1': 'lora' is listed twice"),
        (
            {"overrides": {"model": {"tiny-lama": {"training": {"max_steps": 1}}}}},
            r"field 'overrides.model.tiny-lama'.*did you mean 'tiny-llama'",
        ),
        ({"overrides": {"dataset": {"gda": {"training": {"max_steps": 1}}}}}, r"overrides.dataset.gda.*'gad'"),
        ({"overrides": {"method": {"fft": {"training": {"max_steps": 1}}}}}, r"overrides.method.fft.*methods: lora"),
        ({"seeds": [0, 0]}, r"field 'seeds': a seed is listed twice"),
    ],
)
def test_an_ambiguous_study_is_refused_naming_the_field(tmp_path, fields, needle):
    path = _study(tmp_path, **fields)
    with pytest.raises(BiotuneError, match=needle) as e:
        load_study(path)
    assert str(e.value).startswith(f"{path}:")


# -- 5. a folder is written by one live process ------------------------------------------------------------------


def test_a_run_into_a_folder_another_live_process_holds_waits_then_is_one_line(tmp_path, monkeypatch):
    """What lets a rerun never train into the folder of an orphan still running (test_faults kills a study and
    reruns it at once): the process writing a run folder holds it; another waits for it, then gives up in one line
    with nothing written."""
    import biotune.train as train

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from biotune.io import folder_lock\n"
            f"with folder_lock({str(out)!r}):\n print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(train, "FOLDER_WAIT_S", 1.0)
        cfg = ExperimentConfig(
            dataset="gad", model=TINY_LLAMA, method={"name": "lora"}, training=TRAINING, output_dir=str(out)
        )
        with pytest.raises(BiotuneError, match="in use by another live process"):
            train.run_experiment(cfg, progress=False)
        assert list(out.iterdir()) == []
    finally:
        holder.kill()
        holder.wait()
    monkeypatch.setattr(train, "FOLDER_WAIT_S", 30.0)
    from biotune.io import folder_lock

    with folder_lock(out, wait=5):  # the holder's death let go of it
        pass


# -- 6. writers stay in their folder ----------------------------------------------------------------------------


def test_a_symlinked_checkpoints_folder_is_refused_and_its_target_untouched(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep me")
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    cfg = ExperimentConfig(
        dataset="gad", model=TINY_LLAMA, method={"name": "lora"}, training=TRAINING, output_dir=str(out)
    )
    from biotune.train import run_experiment

    with pytest.raises(BiotuneError, match=r"checkpoints is a symlink .*remove the link"):
        run_experiment(cfg, progress=False)
    assert [p.name for p in elsewhere.iterdir()] == ["precious.txt"]


def test_an_output_folder_that_is_a_file_or_cannot_be_written_is_one_line(tmp_path, readonly_dir):
    dataset_free = {"dataset": "gad", "model": TINY_LLAMA, "method": {"name": "lora"}, "training": TRAINING}
    file = tmp_path / "taken"
    file.write_text("a file")
    for out, needle in ((file, "is a file, not a folder"), (readonly_dir / "run", "cannot write in")):
        exp = tmp_path / "exp.yaml"
        exp.write_text(yaml.safe_dump({**dataset_free, "output_dir": str(out)}))
        r = cli_here("run", exp)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr
    r = cli_here(
        "eval",
        "--model",
        "smollm2-135m",
        "--datasets",
        "gad",
        "--limit",
        "1",
        "--output-dir",
        str(readonly_dir / "eval"),
    )
    assert r.returncode == 2 and str(readonly_dir) in r.stderr and "Traceback" not in r.stderr


def test_export_copies_no_symlink_and_refuses_a_symlinked_or_file_target(tmp_path):
    from biotune.export import export_run

    _, run = _run(tmp_path, "lora")
    secret = tmp_path / "secret.txt"
    secret.write_text("not the run's")
    (run / "final" / "notes.txt").symlink_to(secret)
    with pytest.raises(BiotuneError, match="notes.txt is a symlink"):
        export_run(run, tmp_path / "x")
    (run / "final" / "notes.txt").unlink()
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target, target_is_directory=True)
    with pytest.raises(BiotuneError, match="is a symlink"):
        export_run(run, tmp_path / "link")
    with pytest.raises(BiotuneError, match="is a file"):
        export_run(run, secret)
    assert not list(tmp_path.glob("*.part")) and not list(target.iterdir())
    assert export_run(run, tmp_path / "ok").is_dir()


def test_a_url_with_any_character_in_its_path_is_sent_percent_encoded():
    """A dataset file's URL root or split name may hold any character; http.client takes ASCII only (a fuzzed
    split named '¡' ended in a UnicodeEncodeError traceback)."""
    from biotune.data.location import _ascii_url

    assert _ascii_url("https://example.org/data/¡ dev.conll") == "https://example.org/data/%C2%A1%20dev.conll"
    assert _ascii_url("https://example.org/a%20b.tsv?x=ü") == "https://example.org/a%20b.tsv?x=%C3%BC"
    assert _ascii_url("https://bücher.example/x.tsv") == "https://xn--bcher-kva.example/x.tsv"
