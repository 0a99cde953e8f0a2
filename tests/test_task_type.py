"""A task type is one module plus one registration line: a new one, defined here and nowhere else, reads its dataset
file (its fields, its checks), loads its records, formats prompts, parses answers, scores on the one path (stats
summed) and names its encoder head, with no other module of biotune changed."""

import numpy as np
import pytest

from biotune.data import load_split
from biotune.data.dataset_file import load_dataset_file
from biotune.errors import BiotuneError
from biotune.fields import ConfigFieldError
from biotune.models import FAMILIES
from biotune.models.encoder import label_list
from biotune.tasks import TASKS, Parsed, Task, task_for
from biotune.tasks.base import clean_output, find_first_option, record_label


class SentenceClassTask(Task):
    """One label per sentence (e.g. a sentence's section in an abstract); scored by accuracy."""

    name = "sentence_class"
    schema = "sentence_label"
    fields = {"id": "str", "sentence": "str", "label": "str"}
    source_fields = ("id", "sentence", "label")
    labelled = True
    encoder_head = "sequence_classification"
    rule = "accuracy"

    @classmethod
    def check_file(cls, df) -> None:
        super().check_file(df)
        if len(df.labels) < 2:
            raise ConfigFieldError(["labels"], "a sentence class dataset needs two labels or more")

    @classmethod
    def from_record(cls, get, spec, bad) -> dict:
        return {"sentence": str(get("sentence")), "label": record_label(get("label"), spec, bad)}

    def default_instruction(self) -> str:
        return f"Which part of an abstract is this sentence from? Answer with one of: {', '.join(self.spec.labels)}."

    def render_input(self, example: dict) -> str:
        return example["sentence"]

    def target(self, example: dict) -> str:
        return example["label"]

    def parse(self, text: str, example: dict) -> Parsed:
        found = find_first_option(clean_output(text), self.spec.labels)
        return Parsed(found, True) if found else Parsed("<unparsed>", False)

    def encoder_input(self, example: dict):
        return example["sentence"]

    def gold(self, example: dict) -> str:
        return example["label"]

    def rule_stats(self, golds, predictions, ids):
        return np.array([(g == p, 1) for g, p in zip(golds, predictions)], dtype=float).reshape(-1, 2)

    def rule_score(self, totals):
        return 100 * totals[..., 0] / np.maximum(totals[..., 1], 1)

    def rule_details(self, totals) -> dict:
        return {"accuracy": float(self.rule_score(totals))}


@pytest.fixture
def registered():
    TASKS.add("sentence_class", SentenceClassTask)  # the one registration line
    yield
    TASKS._entries.pop("sentence_class")


def _write(folder, labels="[background, methods, results]") -> str:
    (folder / "data").mkdir(exist_ok=True)
    rows = ["id,text,section", "s1,We studied 40 patients.,methods", "s2,Mortality fell by half.,results"]
    (folder / "data" / "test.csv").write_text("\n".join(rows) + "\n")
    path = folder / "sections.yaml"
    path.write_text(
        "name: sections\ntask: sentence_class\n"
        "source: {format: csv, header: true, root: data, splits: {test: test.csv}}\n"
        f"fields: {{sentence: text, label: section}}\nlabels: {labels}\n"
    )
    return str(path)


def test_a_new_task_type_is_one_module_and_one_registration_line(registered, tmp_path):
    path = _write(tmp_path)
    spec = load_dataset_file(path)
    assert spec.schema == "sentence_label"
    split = load_split(path, "test")
    assert split.column_names == ["id", "sentence", "label"]
    assert split[1] == {"id": "s2", "sentence": "Mortality fell by half.", "label": "results"}

    task = task_for(spec)
    assert task.metric == "accuracy"
    answers = [task.parse("methods.", split[0]), task.parse("I think: Results", split[1])]
    assert [a.value for a in answers] == ["methods", "results"] and all(a.ok for a in answers)
    assert task.score(split.to_list(), ["methods", "background"]) == {"score": 50.0, "accuracy": 50.0}

    encoder = FAMILIES.get("encoder")
    assert encoder.head_for("sentence_class") == "sequence_classification"
    assert label_list(spec) == ["background", "methods", "results"]


def test_a_new_task_types_own_checks_and_record_mapping_name_the_file(registered, tmp_path):
    with pytest.raises(BiotuneError, match=r"sections.yaml:\d+: field 'labels': a sentence class dataset needs two"):
        load_dataset_file(_write(tmp_path, labels="[methods]"))
    (tmp_path / "other").mkdir()
    path = _write(tmp_path / "other", labels="[background, methods]")
    with pytest.raises(BiotuneError, match=r"test.csv:3.*unknown label 'results'"):
        load_split(path, "test")
    with pytest.raises(BiotuneError, match="field 'fields.tokens': 'tokens' is not a field of a sentence_class"):
        bad = tmp_path / "other" / "bad.yaml"
        bad.write_text(open(path).read().replace("fields: {sentence: text", "fields: {tokens: text"))
        load_dataset_file(str(bad))
