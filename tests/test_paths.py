"""Names that become paths are checked; only safetensors weights load; remote code stays opt-in (test_configs)."""

import json

import pytest
import torch

from biotune.config import ExperimentConfig, load_experiment
from biotune.errors import BiotuneError
from biotune.study.grid import load_study
from test_study import TINY_LLAMA, write_study


@pytest.mark.parametrize(
    "fields, needle",
    [
        ({"name": "../x"}, "field 'name': '../x': a study name becomes part of a folder name"),
        ({"name": "a/b"}, "field 'name': 'a/b'"),
        ({"models": [dict(TINY_LLAMA, name="../../etc")]}, "field 'models.0.name': '../../etc': a model name"),
        ({"methods": [{"name": "lora", "label": "x/../../y"}]}, "field 'methods.0.label': 'x/../../y': a method label"),
        ({"methods": [{"name": "lora", "label": ".hidden"}]}, "field 'methods.0.label'"),
    ],
)
def test_a_name_that_would_leave_the_study_folder_is_refused_and_nothing_is_written(tmp_path, fields, needle):
    path = write_study(tmp_path, **fields)
    with pytest.raises(BiotuneError, match=r"study.yaml:\d+: ") as e:
        load_study(path)
    assert needle in str(e.value) and "e.g. my-study_2" in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_a_run_name_with_a_path_in_it_is_refused(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("name: ../../outside\ndataset: gad\nmodel: {family: causal}\nmethod: {name: lora}\n")
    with pytest.raises(BiotuneError, match=r"e.yaml:1: field 'name': '../../outside': a run name"):
        load_experiment(path)
    assert (
        ExperimentConfig(name="gad-lora_r8.v2", dataset="gad", model={"family": "causal"}, method={"name": "lora"}).name
        == "gad-lora_r8.v2"
    )


def test_pickled_weights_are_never_loaded(tmp_path, data_dir):
    """A folder with pytorch_model.bin only (a pickle: loading it can run code) is refused with the fix."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from biotune.models.aliases import resolve
    from biotune.models.gguf import materialize

    tokenizer = AutoTokenizer.from_pretrained(materialize(resolve("smollm2-135m")))
    config = LlamaConfig(**{k: v for k, v in TINY_LLAMA["random_init"].items()}, vocab_size=len(tokenizer))
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    torch.save(LlamaForCausalLM(config).state_dict(), folder / "pytorch_model.bin")
    tokenizer.save_pretrained(folder)
    cfg = ExperimentConfig(
        dataset="gad",
        model={"family": "causal", "path": str(folder)},
        method={"name": "zero_shot"},
        eval={"limit": 1},
        data_dir=str(data_dir),
        output_dir=str(tmp_path / "out"),
    )
    from biotune.train import run_experiment

    with pytest.raises(BiotuneError, match="safetensors weights only, never pickled ones"):
        run_experiment(cfg, progress=False)
    assert not (tmp_path / "out" / "metrics.json").exists()
