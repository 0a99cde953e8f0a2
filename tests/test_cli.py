"""The CLI as a user runs it (real subprocesses): `data list` / `data show`, and one-line errors."""

import shutil
import subprocess
import sys

import pytest

from biotune.data import DATASETS


def biotune(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "biotune", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def assert_clean_error(result, *needles):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_data_list_shows_all_13_datasets_and_missing_splits(data_dir):
    r = biotune("data", "list", "--data-dir", str(data_dir))
    assert r.returncode == 0, r.stderr
    for name, spec in DATASETS.items():
        assert name in r.stdout and spec.task in r.stdout
    assert "13 datasets" in r.stdout
    assert r.stdout.count("missing") >= 2  # EBM PICO train: the one split not in ../shared
    assert str(data_dir / "ebmnlp" / "train.tsv") in r.stdout
    assert str(data_dir / "chemprot") not in r.stdout  # ChemProt is complete
    for size in ("4560", "25296", "1295", "11268", "10386"):
        assert size in r.stdout


def test_data_show_prints_examples_with_targets(data_dir):
    r = biotune("data", "show", "bioasq", "--split", "dev", "-n", "2", "--data-dir", str(data_dir))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count('"target"') == 2 and "5313b049e3eabad021000013" in r.stdout


def test_missing_data_dir(tmp_path):
    assert_clean_error(biotune("data", "list", "--data-dir", str(tmp_path / "nope")), "does not exist", "nope")


def test_malformed_data_line_names_file_and_line(data_dir, tmp_path):
    shutil.copytree(data_dir / "GAD", tmp_path / "GAD")
    path = tmp_path / "GAD" / "dev.tsv"
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = "3\tbroken line without label\n"
    path.write_text("".join(lines))
    r = biotune("data", "show", "gad", "--split", "dev", "--data-dir", str(tmp_path))
    assert_clean_error(r, f"{path}:4:", "expected 3 tab-separated columns")


def test_missing_split_is_explained(data_dir):
    r = biotune("data", "show", "ebm-pico", "--split", "train", "--data-dir", str(data_dir))
    assert_clean_error(r, "ebm-pico train split is missing", str(data_dir / "ebmnlp" / "train.tsv"), "--data-dir")


@pytest.mark.parametrize(
    "args,needles",
    [
        (("data", "show", "bc5chem"), ("unknown dataset 'bc5chem'", "bc5-chem", "bioasq")),
        (("eval", "--datasets", "gad,nosuch", "--limit", "1"), ("unknown dataset 'nosuch'", "gad", "pubmedqa")),
        (
            ("eval", "--model", "nosuchmodel", "--datasets", "gad", "--limit", "1"),
            ("unknown model 'nosuchmodel'", "smollm2-135m"),
        ),
        (("eval", "--scoring", "loglik", "--datasets", "gad"), ("scoring", "'generate' or 'likelihood'")),
        (("eval", "--shots", "-1", "--datasets", "gad"), ("shots", "greater than or equal to 0")),
    ],
)
def test_bad_eval_input_is_one_clear_line_and_writes_nothing(args, needles, tmp_path, data_dir):
    out = tmp_path / "out"
    r = biotune(*args, "--output-dir", str(out)) if args[0] == "eval" else biotune(*args)
    assert_clean_error(r, *needles)
    assert not out.exists()


def test_a_typed_ner_datasets_f1_per_type_is_printed_beside_the_micro_f1():
    from biotune.cli import per_type

    metrics = {"score": 55.0, "f1": 0.55, "precision": 0.6, "f1_CHEMICAL": 71.2, "f1_GENE-N": 40.1}
    assert per_type(metrics) == "CHEMICAL 71.20 · GENE-N 40.10"
    assert per_type({"score": 55.0, "f1": 0.55}) == ""


def test_eval_options_are_the_settings_models_fields_described_once():
    """`biotune eval`'s options are EvalConfig's fields (with an experiment's `eval:` settings, EvalSettings):
    each with the field's own description and default, none defined twice."""
    from typer.testing import CliRunner

    from biotune.cli import app
    from biotune.config import EvalConfig, EvalSettings

    result = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert result.exit_code == 0
    assert set(EvalSettings.model_fields) < set(EvalConfig.model_fields)
    for name, field in EvalConfig.model_fields.items():
        assert f"--{name.replace('_', '-')} " in result.output, name
        if name not in ("output_dir", "data_dir"):  # the command says where its default output and data lie
            assert field.description in " ".join(result.output.split()), name
