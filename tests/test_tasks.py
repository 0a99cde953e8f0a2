"""Task formatting and parsing: targets parse back to the gold structure on real BLURB data; bad output is
counted as unparsed (a wrong prediction), never a crash."""

import pytest

from biotune.data import DATASETS, get_spec, load_split
from biotune.tasks import task_for
from biotune.tasks.mentions import locate, spans_from_tags, split_mentions

# Round trip target -> parse -> score on real dev data. NER/PICO lose a little where the same text is tagged
# in one place and not in another of the same sentence, or a mention contains ';' -- measured, then bounded.
ROUND_TRIP_MIN = {
    "ner": 99.0,
    "pico": 99.0,
    "relation": 100.0,
    "similarity": 100.0,
    "doc_classification": 100.0,
    "qa": 100.0,
}


@pytest.mark.parametrize("name", DATASETS.names())
def test_target_parses_back_to_gold(name, data_dir):
    spec = get_spec(name)
    task = task_for(spec)
    examples = load_split(name, "dev", data_dir).to_list()
    parsed = [task.parse(task.target(ex), ex) for ex in examples]
    assert sum(not p.ok for p in parsed) <= 0.001 * len(examples)
    result = task.score(examples, [p.value for p in parsed])
    assert result["score"] >= ROUND_TRIP_MIN[spec.task]


@pytest.mark.parametrize("name", DATASETS.names())
@pytest.mark.parametrize("garbage", ["", "!!!", "I cannot answer that.", "\n\n\n", "42 42 42", "; ; ;"])
def test_garbage_output_is_a_counted_wrong_prediction(name, garbage, data_dir):
    task = task_for(get_spec(name))
    ex = load_split(name, "dev", data_dir)[0]
    p = task.parse(garbage, ex)
    # the value is always scorable; empty / unrelated output is flagged as unparsed
    task.score([ex], [p.value])
    if garbage.strip() in ("", "!!!", "I cannot answer that."):
        assert not p.ok


def test_mentions_match_tokenized_text():
    tokens = ["Treatment", "with", "5", "-", "fluorouracil", "and", "Cisplatin", "."]
    assert locate("5-fluorouracil", tokens) == [(2, 5)]
    assert locate("cisplatin", tokens) == [] and locate("cisplatin", tokens, fold=True) == [(6, 7)]
    assert locate("5-fluoro", tokens) == []
    assert split_mentions("1. 5-fluorouracil\n- cisplatin.") == ["1. 5-fluorouracil", "- cisplatin."]
    ner = task_for(get_spec("bc5-chem"))
    assert ner.parse("1. 5-fluorouracil\n- cisplatin.", {"tokens": tokens, "tags": ["O"] * 8}).value == [
        "O",
        "O",
        "B",
        "I",
        "I",
        "O",
        "B",
        "O",
    ]


def test_mention_placement_fixes_found_by_the_audit():
    ner, pico = task_for(get_spec("bc5-chem")), task_for(get_spec("ebm-pico"))
    # "NO" (nitric oxide) is a mention where the sentence has it, not a none-word
    ex = {"tokens": ["NO", "release", "was", "reduced", "."], "tags": ["B", "O", "O", "O", "O"]}
    assert ner.parse(ner.target(ex), ex).value == ex["tags"] and ner.target(ex) == "NO"
    # case: a gold "IN" never tags "in"; a model's other casing still finds the word when nothing else matches
    ex = {"tokens": ["IN", "given", "in", "rats"], "tags": ["B", "O", "O", "O"]}
    assert ner.parse("IN", ex).value == ["B", "O", "O", "O"]
    assert ner.parse("in", ex).value == ["O", "O", "B", "O"]
    assert ner.parse("Rats", ex).value == ["O", "O", "O", "B"]
    # edges: a leading number with a period, a '*' and quotes are kept where the sentence has them
    tokens = ["2.", "mg", "of", "*", "drug", "'", "X", "'", "daily"]
    ex = {"tokens": tokens, "tags": ["I-INT", "I-INT", "O", "I-INT", "I-INT", "I-INT", "I-INT", "I-INT", "O"]}
    assert pico.parse(pico.target(ex), ex).value == ex["tags"]


def test_inline_format_names_each_occurrence():
    ner = task_for(get_spec("bc5-chem"), "inline")
    ex = {"tokens": ["aspirin", "and", "aspirin", "plus", "5", "-", "FU"], "tags": ["O", "O", "B", "O", "B", "I", "I"]}
    assert ner.target(ex) == "aspirin and <e>aspirin</e> plus <e>5 - FU</e>"
    assert ner.parse(ner.target(ex), ex).value == ex["tags"]
    assert ner.parse("aspirin and <e>aspirin</e> plus <e>5-FU</e>", ex).value == ex["tags"]  # spacing aside
    # the text rewritten differently: each marked mention at its nearest occurrence
    assert ner.parse("Aspirin, then <e>aspirin</e> plus 5-FU", ex).value == ["O", "O", "B", "O", "O", "O", "O"]
    assert "<e>" in ner.instruction() and ner.max_new_tokens > task_for(get_spec("bc5-chem")).max_new_tokens
    pico = task_for(get_spec("ebm-pico"), "inline")
    ex = {"tokens": ["50", "adults", "given", "aspirin"], "tags": ["I-PAR", "I-PAR", "O", "I-INT"]}
    assert pico.target(ex) == "<P>50 adults</P> given <I>aspirin</I>"
    assert pico.parse(pico.target(ex), ex).value == ex["tags"]
    assert not pico.parse("", ex).ok


def test_ner_parse_marks_every_occurrence_and_skips_unknown_mentions():
    spec = get_spec("bc5-chem")
    task = task_for(spec)
    ex = {"tokens": ["aspirin", "and", "aspirin", "plus", "5", "-", "FU"], "tags": ["O"] * 7}
    p = task.parse("aspirin; 5-FU; heparin", ex)
    assert p.value == ["B", "O", "B", "O", "B", "I", "I"] and p.ok
    assert not task.parse("heparin", ex).ok  # every mention is absent from the sentence
    none = task.parse("none", ex)
    assert none.ok and none.value == ["O"] * 7


def test_pico_parse_lines_to_io_tags():
    task = task_for(get_spec("ebm-pico"))
    ex = {"tokens": "Aspirin in 40 adults with migraine reduced pain .".split(), "tags": ["O"] * 9}
    p = task.parse("Participants: 40 adults with migraine\nInterventions: Aspirin\nOutcomes: pain", ex)
    assert p.ok
    assert p.value == ["I-INT", "O", "I-PAR", "I-PAR", "I-PAR", "I-PAR", "O", "I-OUT", "O"]


def test_relation_parse_uses_whole_words():
    task = task_for(get_spec("chemprot"))
    ex = {"text": "x", "label": "CPR:6"}
    assert task.parse("antagonist", ex).value == "CPR:6"
    assert task.parse("It is an agonist.", ex).value == "CPR:5"
    assert task.parse("Answer: none", ex).value == "false"
    bad = task.parse("maybe", ex)
    assert not bad.ok and bad.value not in get_spec("chemprot").labels


def test_similarity_parse_clamps_and_flags():
    task = task_for(get_spec("biosses"))
    assert task.parse("3.5", {}).value == 3.5
    assert task.parse("Score: 7", {}).value == 4.0
    assert not task.parse("very similar", {}).ok


def test_hoc_parse_and_choice_combination():
    spec = get_spec("hoc")
    task = task_for(spec)
    p = task.parse("Inducing angiogenesis; resisting cell death", {})
    assert p.value == ["inducing angiogenesis", "resisting cell death"]
    assert task.parse("none", {}).ok and task.parse("none", {}).value == []
    queries = task.choice_queries()
    assert len(queries) == 10 and all(q.options == ["yes", "no"] for q in queries)
    chosen = ["no"] * 10
    chosen[6] = "yes"
    assert task.from_choices({}, chosen).value == [spec.labels[6]]


def test_spans_from_tags_bio_and_io():
    assert spans_from_tags(["B", "I", "B", "O", "I"], ("B", "I")) == [(0, 2), (2, 3), (4, 5)]
    assert spans_from_tags(["I-PAR", "I-PAR", "O", "I-PAR"], ("I-PAR",)) == [(0, 2), (3, 4)]
