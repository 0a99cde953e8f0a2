"""Every shipped experiment YAML loads and validates; the tiny ones run end to end; bad experiment files give a
clear error naming the field (and line) and the valid choices, with nothing written."""

import subprocess
import sys
from pathlib import Path

import pytest

from biotune.config import load_experiment
from biotune.train import run_experiment

CONFIGS = sorted(Path(__file__).resolve().parents[1].glob("configs/**/*.yaml"))
EXPERIMENTS = [p for p in CONFIGS if p.parent.name in ("causal", "seq2seq", "glm", "encoder")]
ACCELERATE = [p for p in CONFIGS if p.parent.name == "distributed"]
DATASET_FILES = [p for p in CONFIGS if p.parent.name == "datasets"]
STUDIES = [p for p in CONFIGS if p not in EXPERIMENTS + ACCELERATE + DATASET_FILES]


def test_every_shipped_yaml_is_an_experiment_a_study_a_dataset_or_an_accelerate_config():
    assert STUDIES and all(p.parent.name == "studies" or p.name == "demo.yaml" for p in STUDIES)
    assert {p.stem for p in ACCELERATE} >= {"ddp_cpu", "ddp_gpu", "fsdp", "deepspeed_zero2", "deepspeed_zero3"}


@pytest.mark.parametrize("path", ACCELERATE, ids=[p.stem for p in ACCELERATE])
def test_shipped_accelerate_config_loads(path):
    """Read by accelerate's own config loader, as `accelerate launch --config_file` reads it."""
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(path))
    assert cfg.num_processes >= 2 and cfg.num_machines == 1
    kind = path.stem.split("_")[0]
    expected = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed": "DEEPSPEED"}[kind]
    assert str(cfg.distributed_type).endswith(expected)
    if kind == "fsdp":
        assert cfg.fsdp_config["fsdp_version"] == 2
    if kind == "deepspeed":
        assert cfg.deepspeed_config["zero_stage"] in (2, 3)


@pytest.mark.parametrize("path", DATASET_FILES, ids=[p.stem for p in DATASET_FILES])
def test_shipped_dataset_file_loads(path):
    """Each example dataset file validates (its data is written by scripts/example_data.py and read in
    tests/test_dataset_files.py)."""
    from biotune.data.dataset_file import load_dataset_file

    spec = load_dataset_file(path)
    assert spec.name == path.stem and set(spec.files) == {"train", "dev", "test"} and not spec.blurb


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_shipped_study_expands(path):
    from biotune.study.grid import load_study

    study, cells, _ = load_study(path)
    assert cells and len({c.label for c in cells}) == len(cells) == len({c.identity_hash for c in cells})


def test_the_fair_comparison_study_is_the_issues_grid():
    """configs/studies/fair.yaml: SmolLM2 on GAD and NCBI-disease with LoRA, QLoRA and FFT each searched over 3
    learning rates, 3-shot, MiniLM FFT; at least 1,000 training examples per cell, full test splits, 3 seeds."""
    from biotune.study.grid import load_study

    study, cells, _ = load_study(Path(__file__).resolve().parents[1] / "configs" / "studies" / "fair.yaml")
    assert study.seeds == [0, 1, 2] and study.dataset_names() == ["gad", "ncbi-disease"]
    groups = {g.key: g for g in study.groups}
    for d in ("gad", "ncbi-disease"):
        for method in ("lora", "qlora", "fft"):
            rates = [c.experiment.training.learning_rate for c in groups[(d, "smollm2-135m", method)].candidates]
            assert len(set(rates)) == 3
        assert len(groups[(d, "minilm", "fft")].candidates) == 3
    assert {c.method for c in cells if c.search is None} == {"few_shot"}
    for c in cells:
        assert c.experiment.eval.limit is None and c.experiment.eval.split == "test"
        if c.search is not None:
            assert c.experiment.training.train_limit >= 1000 and c.experiment.training.train_split == "train"


def test_the_fair_rerun_searches_adaptively_with_one_budget_and_fresh_seeds():
    """configs/studies/fair-halving.yaml: the fair study's models, data and rates, searched by successive halving
    (the first rung at a dev evaluation a quarter in), one epoch over the same 1,000 examples for every method, the
    candidates on a seed no result uses."""
    from biotune.study.grid import load_study

    study, cells, _ = load_study(Path(__file__).resolve().parents[1] / "configs" / "studies" / "fair-halving.yaml")
    assert study.search.strategy == "halving" and study.search.rungs == [0.25, 1.0]
    assert {g.strategy for g in study.groups} == {"halving"} and len(study.groups) == 8
    assert {g.search_seed for g in study.groups} == {3} and study.seeds == [0, 1, 2]
    for c in cells:
        t = c.experiment.training
        assert t.epochs == 1 and t.train_limit == 1000 and t.max_steps == -1 and c.experiment.eval.limit is None
        if c.search is not None:
            n = 1000
            total, _, every = t.schedule(n)
            first = t.model_copy(update={"pause_at": 0.25}).pause_step(n)
            assert first % every == 0 and 0.25 * total <= first < 0.4 * total


def test_the_encoder_baseline_covers_every_blurb_dataset_with_a_training_split_at_full_size():
    """configs/studies/encoder-baseline.yaml: MiniLM fully fine-tuned on the 12 BLURB datasets with a training
    split here (EBM PICO has none), full training, dev and test splits, fp32 on every machine kind, the learning
    rate searched by halving on dev and the best epoch kept on dev, 3 fresh seeds."""
    from biotune.data import DATASETS
    from biotune.study.grid import load_study

    study, cells, _ = load_study(Path(__file__).resolve().parents[1] / "configs" / "studies" / "encoder-baseline.yaml")
    assert set(study.datasets) == set(DATASETS.names()) - {"ebm-pico"} and len(study.datasets) == 12
    assert {g.strategy for g in study.groups} == {"halving"} and len(study.groups) == 12
    assert {g.search_seed for g in study.groups} == {3} and study.seeds == [0, 1, 2]
    for c in cells:
        t, e = c.experiment.training, c.experiment
        assert t.train_limit is None and t.dev_limit is None and e.eval.limit is None and t.max_steps == -1
        assert t.bf16 is False and t.select_by == "metric" and t.eval_steps is None  # dev at every epoch
        assert e.model.family == "encoder" and e.method.name == "fft"
    epochs = {c.dataset: c.experiment.training.epochs for c in cells}
    assert epochs["biosses"] == 30 and epochs["hoc"] == epochs["pubmedqa"] == 10 and epochs["bc2gm"] == 3


def test_the_seed_tables_llm_side_runs_each_method_where_the_issue_asks():
    """configs/studies/seed-table-llm.yaml: SmolLM2-135M zero- and 3-shot on all 13 BLURB datasets (EBM PICO's shots
    from dev), LoRA and FFT on the 12 with a training split, QLoRA and P-tuning on one per task type that trains, and
    MiniLM fully fine-tuned on the same 12 (the encoder the LLM is compared with at equal data); 1,000 training
    examples, one epoch, halving on dev over each method's own range (the encoder's over BERT's), 3 fresh seeds; a
    fixed 1,000-example test subset where a full split's generation would take too long here."""
    from biotune.data import DATASETS
    from biotune.study.grid import load_study

    study, cells, _ = load_study(Path(__file__).resolve().parents[1] / "configs" / "studies" / "seed-table-llm.yaml")
    where: dict[tuple[str, str], set] = {}
    for c in cells:
        where.setdefault((c.model, c.method), set()).add(c.dataset)
    every = set(DATASETS.names())
    llm = "smollm2-135m"
    assert where[llm, "zero_shot"] == where[llm, "few_shot"] == every
    assert where[llm, "lora"] == where[llm, "fft"] == where["minilm", "fft"] == every - {"ebm-pico"}
    one_per_type = {"ncbi-disease", "chemprot", "biosses", "hoc", "pubmedqa"}
    assert where[llm, "qlora"] == where[llm, "ptuning"] == one_per_type
    assert set(where) == {(llm, m) for m in ("zero_shot", "few_shot", "lora", "fft", "qlora", "ptuning")} | {
        ("minilm", "fft")
    }
    assert {DATASETS.get(d).task for d in one_per_type} == {DATASETS.get(d).task for d in every} - {"pico"}
    assert len(study.groups) == 12 + 12 + 12 + 5 + 5 and {g.strategy for g in study.groups} == {"halving"}
    assert study.seeds == [0, 1, 2] and study.order == "dataset"
    encoder = {tuple(g.grid["training.learning_rate"]) for g in study.groups if g.key[1] == "minilm"}
    assert encoder == {(3e-5, 1e-4, 3e-4)}
    subset = {"bc5-chem", "bc5-disease", "bc2gm", "jnlpba", "chemprot", "ddi", "ebm-pico"}
    for c in cells:
        e = c.experiment
        assert e.training.train_limit == 1000 and e.training.dev_limit == 200 and e.training.epochs == 1
        assert e.training.bf16 is False
        assert e.training.batch_size == (16 if c.model == "minilm" else 8)
        assert e.eval.limit == (1000 if c.dataset in subset else None)
        assert e.eval.shot_split == ("dev" if c.dataset == "ebm-pico" else "train")
        assert e.training.max_length == (512 if c.dataset in {"hoc", "pubmedqa", "bioasq"} else 256)


def test_configs_are_laid_out_by_family_model_method():
    assert len(EXPERIMENTS) >= 30
    for path in EXPERIMENTS:
        cfg = load_experiment(path)
        model, method = path.stem.rsplit("_", 1) if path.stem.count("_") == 1 else _split(path.stem)
        assert cfg.model.family == path.parent.name
        assert cfg.method.name == method, path


def _split(stem):
    for method in ("zero_shot", "few_shot", "prompt_tuning"):
        if stem.endswith("_" + method):
            return stem[: -len(method) - 1], method
    return stem.rsplit("_", 1)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[f"{p.parent.name}/{p.stem}" for p in EXPERIMENTS])
def test_shipped_config_validates(path):
    cfg = load_experiment(path)
    assert cfg.dataset and cfg.model.path


TINY = [p for p in EXPERIMENTS if p.stem.startswith("tiny-")]


@pytest.mark.parametrize("path", TINY, ids=[p.stem for p in TINY])
def test_tiny_configs_run_end_to_end(path, tmp_path, data_dir):
    cfg = load_experiment(path, {"output_dir": str(tmp_path / "run"), "data_dir": str(data_dir)})
    summary = run_experiment(cfg, progress=False)
    assert summary["metrics"]["n"] == cfg.eval.limit
    assert summary["resources"]["trainable_params"] > 0
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert (tmp_path / "run" / "config.yaml").is_file()


GOOD = """dataset: gad
model:
  family: causal
  path: smollm2-135m
method:
  name: lora
training:
  max_steps: 4
"""


@pytest.mark.parametrize(
    "replace,needles",
    [
        (("name: lora", "name: lorra"), ["exp.yaml:6:", "method.name", "unknown method 'lorra'", "qlora", "ptuning"]),
        (("max_steps: 4", "max_steps: four"), ["exp.yaml:8:", "training.max_steps", "valid integer"]),
        (
            ("family: causal", "family: causal\n  head: token_classification"),
            ["exp.yaml:4:", "model.head", "'token_classification' does not fit the causal family", "valid: lm"],
        ),
        (("dataset: gad", "dataset: gadd"), ["exp.yaml:1:", "dataset", "unknown dataset 'gadd'", "bc5-chem"]),
        (
            ("family: causal", "family: rnn"),
            ["exp.yaml:3:", "model.family", "unknown model family 'rnn'", "seq2seq", "encoder"],
        ),
        (("family: causal\n  path: smollm2-135m", "family: encoder\n  path: minilm"), None),  # lora fits encoders
        (("name: lora", "name: lora\n  params: {r: 0}"), ["method.params.r", "greater than or equal to 1"]),
        (("name: lora", "name: lora\n  params: {rank: 8}"), ["method.params.rank", "Extra inputs"]),
        (("training:", "trainin:"), ["trainin", "Extra inputs"]),
        (("max_steps: 4", "max_steps: [4"), ["exp.yaml:9:", "not valid YAML"]),
    ],
)
def test_bad_experiment_file(replace, needles, tmp_path):
    path = tmp_path / "exp.yaml"
    out = tmp_path / "out"
    path.write_text(GOOD.replace(*replace) + f"output_dir: {out}\n")
    if needles is None:
        load_experiment(path)
        return
    r = subprocess.run([sys.executable, "-m", "biotune", "run", str(path)], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    assert str(path) in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists()


def test_method_that_does_not_fit_the_family(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(
        GOOD.replace("family: causal\n  path: smollm2-135m", "family: encoder\n  path: minilm").replace(
            "name: lora", "name: few_shot"
        )
    )
    with pytest.raises(Exception) as e:
        load_experiment(path)
    msg = str(e.value)
    assert "method.name" in msg and "'few_shot' does not fit the encoder family" in msg and "lora" in msg


def test_chatglm_needs_explicit_trust_remote_code(tmp_path, data_dir):
    """An old ChatGLM checkpoint ships its own code: the error says which field opts in; it stays off."""
    from biotune.errors import BiotuneError

    ckpt = tmp_path / "chatglm"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(
        '{"model_type": "chatglm", "architectures": ["ChatGLMModel"], '
        '"auto_map": {"AutoConfig": "configuration_chatglm.ChatGLMConfig"}}'
    )
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        GOOD.replace("family: causal\n  path: smollm2-135m", f"family: glm\n  path: {ckpt}")
        + f"output_dir: {tmp_path / 'out'}\n"
    )
    cfg = load_experiment(exp)
    assert cfg.model.trust_remote_code is False
    with pytest.raises(BiotuneError, match=r"set `model.trust_remote_code: true`"):
        run_experiment(cfg, progress=False)


def test_the_paper_study_is_the_seed_papers_grid():
    """configs/studies/paper.yaml: the seed paper's models, every BLURB dataset, its six methods, 3 seeds, and
    each trained method's learning rates searched per model (the model-and-method grid winning)."""
    from biotune.study.grid import load_study

    study, cells, left_out = load_study(Path(__file__).resolve().parents[1] / "configs" / "studies" / "paper.yaml")
    assert {m.path for m in study.models} == {
        "meta-llama/Meta-Llama-3-8B-Instruct",
        "google/flan-t5-xl",
        "THUDM/glm-4-9b-chat-hf",
        "google/flan-ul2",
        "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
        "emilyalsentzer/Bio_ClinicalBERT",
    }
    assert len(study.dataset_names()) == 13 and study.seeds == [0, 1, 2]
    assert {m.name for m in study.method_entries()} == {"zero_shot", "few_shot", "fft", "lora", "qlora", "ptuning"}
    assert left_out == []
    groups = {g.key: g for g in study.groups}
    rates = {key: sorted(c.experiment.training.learning_rate for c in g.candidates) for key, g in groups.items()}
    assert rates[("gad", "llama-3-8b", "fft")] == [5e-6, 1e-5, 2e-5]
    assert rates[("gad", "llama-3-8b", "lora")] == [1e-4, 2e-4, 5e-4]
    assert rates[("hoc", "flan-ul2", "qlora")] == [5e-5, 1e-4, 2e-4]
    assert rates[("gad", "glm-4-9b", "ptuning")] == [1e-3, 5e-3, 1e-2]
    assert rates[("gad", "pubmedbert", "fft")] == [1e-5, 3e-5, 5e-5]
    # 13 datasets x (4 LLMs x 4 trained methods + 2 encoders x FFT) searched over 3 rates
    assert len(groups) == 13 * (4 * 4 + 2) and all(len(g.candidates) == 3 for g in groups.values())
    by = {(c.dataset, c.model, c.method, c.seed) for c in cells}
    assert ("gad", "pubmedbert", "lora", 0) not in by and ("gad", "llama-3-8b", "zero_shot", 0) in by
    llama = next(c for c in cells if c.model == "llama-3-8b" and c.method == "lora").experiment
    assert llama.training.gradient_checkpointing and llama.training.batch_size * llama.training.grad_accum == 16
    assert llama.method.params["r"] == 64 and llama.runtime.eval_batch_size == 16


def test_a_model_and_method_search_names_known_models_and_methods(tmp_path):
    import yaml

    from biotune.errors import BiotuneError
    from biotune.study.grid import load_study

    base = {
        "name": "s",
        "datasets": ["gad"],
        "seeds": [0],
        "methods": ["lora"],
        "models": [{"name": "m", "family": "causal", "path": "smollm2-135m"}],
    }
    for grid, needle in (
        ({"x": {"lora": {"training.learning_rate": [1e-4]}}}, "'x' is not one of the study's models"),
        ({"m": {"fft": {"training.learning_rate": [1e-4]}}}, "'fft' is not one of the study's methods"),
    ):
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump({**base, "search": {"model_method": grid}}))
        with pytest.raises(BiotuneError, match=needle):
            load_study(path)


def test_the_readme_key_reference_is_the_config_models_and_every_key_has_a_meaning():
    """README's "Every key" section is generated from the typed config models (biotune.reference): equal to them,
    one row per field of every block, none without a meaning."""
    from biotune.reference import END, SECTIONS, START, reference_markdown, rows

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = START + readme.split(START, 1)[1].split(END, 1)[0] + END
    assert section == reference_markdown(), "README key reference drifted: python -m biotune.reference README.md"
    for _, model, prefix in SECTIONS:
        for name, _kind, _default, meaning in rows(model):
            assert f"| `{prefix}{name}` |" in section
            assert meaning.strip(), f"{model.__name__}.{name} has no meaning: a description or a comment beside it"
