"""Shot selection and prompt construction (real tokenizer of the packaged SmolLM2, real MiniLM for kNN)."""

import pytest

from biotune.data import load_split
from biotune.icl import ShotSelector
from biotune.models import resolve
from biotune.prompting import PromptBuilder, messages, render


@pytest.fixture(scope="module")
def tokenizer():
    from biotune.models.gguf import load_tokenizer

    return load_tokenizer(resolve("smollm2-135m"))


def _render(ex):
    return ex["text"]


def test_random_shots_are_seeded_and_per_example(data_dir):
    pool = load_split("gad", "train", data_dir)
    examples = load_split("gad", "test", data_dir).to_list()[:5]
    a = ShotSelector(pool, 3, _render, "random", seed=1).select_all(examples)
    b = ShotSelector(pool, 3, _render, "random", seed=1).select_all(examples[2:])  # other examples around
    c = ShotSelector(pool, 3, _render, "random", seed=2).select_all(examples)
    assert [[s["id"] for s in x] for x in a[2:]] == [[s["id"] for s in x] for x in b]
    assert a != c
    assert all(len(x) == 3 for x in a)


def test_shots_from_the_evaluated_split_never_include_the_example(data_dir):
    dev = load_split("biosses", "dev", data_dir)  # 16 examples, 15 shots each: all the others
    for selection in ("random", "knn"):
        shots = ShotSelector(dev, 15, lambda e: e["sentence1"], selection, seed=0, exclude_same_id=True).select_all(
            dev.to_list()
        )
        for ex, chosen in zip(dev, shots):
            assert len(chosen) == 15 and ex["id"] not in {s["id"] for s in chosen}


def test_knn_puts_the_nearest_shot_last(data_dir):
    pool = load_split("gad", "train", data_dir).to_list()[:300]
    query = dict(pool[42], id="query")  # same text as pool[42]
    selector = ShotSelector(pool, 3, _render, "knn", seed=0)
    [shots] = selector.select_all([query])
    assert shots[-1]["id"] == pool[42]["id"]


def test_chat_template_prompt_layout(tokenizer):
    text = render(tokenizer, messages("Do X.", [("in1", "out1")], "in2"))
    assert text.index("Do X.") < text.index("in1") < text.index("out1") < text.index("in2")
    assert text.endswith("<|im_start|>assistant\n")


def test_long_prompt_drops_shots_first_then_cuts_input(tokenizer):
    builder = PromptBuilder(tokenizer, max_length=200)
    shot = ("word " * 60, "answer")
    p = builder.build("Instruction.", [shot, shot, shot], "short input", reserve=10)
    assert p.n_dropped >= 1 and p.n_shots == 3 - p.n_dropped and p.n_tokens <= 190
    p2 = builder.build("Instruction.", [shot], "word " * 400, reserve=10)
    assert p2.n_shots == 0 and p2.input_truncated and p2.n_tokens <= 190
    fits = builder.build("Instruction.", [("a", "b")], "c", reserve=10)
    assert fits.n_dropped == 0 and not fits.input_truncated
