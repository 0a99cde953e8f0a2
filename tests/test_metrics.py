"""Each BLURB scoring rule against hand-worked values (../shared/docs/blurb.md), with the edge cases."""

import pytest
from sklearn.metrics import f1_score

from biotune import metrics


def test_entity_f1_hand_worked():
    gold = [["B", "I", "O", "B"], ["O", "B", "I", "I"]]  # entities (0,1) (3,3) | (1,3)
    pred = [["B", "O", "O", "B"], ["O", "B", "I", "I"]]  # (0,0) wrong end, (3,3) ok | (1,3) ok
    m = metrics.entity_f1(gold, pred)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)


def test_entity_f1_no_predicted_entity_is_zero():
    m = metrics.entity_f1([["B", "I", "O"]], [["O", "O", "O"]])
    assert m == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_entity_f1_right_span_wrong_boundary_counts_nothing():
    # the predicted tokens cover the gold span, but as two entities: no exact match
    assert metrics.entity_f1([["B", "I"]], [["B", "B"]])["f1"] == 0.0
    # one token too long
    assert metrics.entity_f1([["B", "O"]], [["B", "I"]])["f1"] == 0.0


def test_entity_f1_conlleval_i_after_o_starts_an_entity():
    assert metrics.entity_f1([["O", "B", "I"]], [["O", "I", "I"]])["f1"] == 1.0


def test_pico_word_level_macro_f1_hand_worked():
    gold = [["I-PAR", "I-PAR", "O", "I-INT", "I-OUT"]]
    pred = [["I-PAR", "O", "O", "I-INT", "I-INT"]]
    classes = ("I-PAR", "I-INT", "I-OUT")
    word = metrics.word_macro_f1(gold, pred, classes)
    # P: tp1 pred1 gold2 -> 2/3; I: tp1 pred2 gold1 -> 2/3; O: in gold, never predicted -> 0
    assert word["f1_I-PAR"] == pytest.approx(2 / 3)
    assert word["f1_I-INT"] == pytest.approx(2 / 3)
    assert word["f1_I-OUT"] == 0.0
    assert word["f1"] == pytest.approx(4 / 9) and word["n_classes"] == 3


def test_pico_macro_f1_runs_over_the_classes_present_as_linkbert_does():
    """The audit's case: gold [P, I, O], prediction [P, I, O], no Outcome anywhere (reachable with --limit):
    LinkBERT 1.0; averaging over all three classes gave 0.667."""
    classes = ("I-PAR", "I-INT", "I-OUT")
    gold = [["I-PAR", "I-INT", "O"]]
    word = metrics.word_macro_f1(gold, gold, classes)
    assert word["f1"] == 1.0 and word["n_classes"] == 2 and "f1_I-OUT" not in word
    # a class only predicted counts (as 0), as it does in seqeval
    assert metrics.word_macro_f1(gold, [["I-PAR", "I-INT", "I-OUT"]], classes)["f1"] == pytest.approx(2 / 3)
    assert metrics.word_macro_f1([["O"]], [["O"]], classes) == {"f1": 0.0, "n_classes": 0}


def _linkbert_pico(gold, pred):
    """LinkBERT's computation (seqeval after every I-x is rewritten as B-x; macro average over the types seqeval
    sees in gold or prediction), written here with seqeval itself as the reference."""
    from seqeval.metrics import classification_report

    as_b = lambda seqs: [[t.replace("I-", "B-") for t in s] for s in seqs]  # noqa: E731
    report = classification_report(as_b(gold), as_b(pred), output_dict=True, zero_division=0)
    return report["macro avg"]["f1-score"]


def test_pico_macro_f1_equals_linkbert_on_random_cases():
    import random

    rng = random.Random(0)
    classes = ("I-PAR", "I-INT", "I-OUT")
    for _ in range(300):
        pool = ["O"] + rng.sample(classes, rng.randint(1, 3))
        gold = [[rng.choice(pool) for _ in range(rng.randint(1, 12))] for _ in range(rng.randint(1, 4))]
        pred = [[rng.choice(pool + ["O"]) for _ in seq] for seq in gold]
        if not any(t != "O" for s in gold + pred for t in s):
            continue
        assert metrics.word_macro_f1(gold, pred, classes)["f1"] == pytest.approx(_linkbert_pico(gold, pred))


def test_relation_micro_f1_excludes_negative_class():
    gold = ["CPR:3", "false", "CPR:4", "CPR:3", "false", "CPR:9"]
    pred = ["CPR:3", "CPR:4", "false", "CPR:4", "false", "false"]
    m = metrics.relation_micro_f1(gold, pred, negative="false")
    # TP = 1; predicted positives 3; gold positives 4 (CPR:9 is never predicted)
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1 / 4)
    assert m["f1"] == pytest.approx(2 / 7)


def test_relation_all_negative_predictions_score_zero():
    assert metrics.relation_micro_f1(["1", "0"], ["0", "0"], negative="0")["f1"] == 0.0


def test_gad_relation_f1_equals_positive_class_f1():
    gold = ["1", "0", "1", "1", "0", "0", "1"]
    pred = ["1", "1", "0", "1", "0", "1", "1"]
    ours = metrics.relation_micro_f1(gold, pred, negative="0")["f1"]
    assert ours == pytest.approx(f1_score(gold, pred, pos_label="1"))


def test_pearson_hand_worked_and_constant_prediction():
    assert metrics.pearson([1, 2, 3], [1, 3, 2])["pearson"] == pytest.approx(0.5)
    assert metrics.pearson([0, 1, 2, 3], [3, 2, 1, 0])["pearson"] == pytest.approx(-1.0)
    const = metrics.pearson([0.5, 1.0, 3.2], [2.0, 2.0, 2.0])
    assert const == {"pearson": 0.0, "undefined": True}
    assert metrics.pearson([0.5, 1.0, 3.2], [1.0, 2.0, 4.0])["undefined"] is False


def test_hoc_unions_sentences_per_document():
    # d1: the sentences disagree (gold on s0, prediction on s1) but the document agrees
    ids = ["d1", "d1"]
    m = metrics.doc_label_micro_f1(ids, [["A"], []], [[], ["A"]], labels=["A", "B"])
    assert m["f1"] == 1.0
    # scored per sentence it would be 0
    assert metrics.doc_label_micro_f1(["s0", "s1"], [["A"], []], [[], ["A"]], labels=["A", "B"])["f1"] == 0.0


def test_hoc_micro_over_document_label_cells():
    ids = ["d1", "d1", "d2"]
    gold = [["A"], ["B"], []]
    pred = [["A"], [], ["C"]]
    m = metrics.doc_label_micro_f1(ids, gold, pred, labels=["A", "B", "C"])
    # cells: d1 gold {A,B} pred {A}; d2 gold {} pred {C} -> TP 1, predicted 2, gold 2
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((0.5, 0.5, 0.5))


def test_accuracy():
    assert metrics.accuracy(["yes", "no", "maybe", "yes"], ["yes", "no", "no", "<unparsed>"])["accuracy"] == 0.5


def test_blurb_score_is_macro_over_task_types_not_datasets():
    scores = {
        "bc5-chem": 90,
        "ncbi-disease": 80,
        "ebm-pico": 70,
        "gad": 60,
        "ddi": 80,
        "biosses": 50,
        "hoc": 40,
        "pubmedqa": 30,
        "bioasq": 50,
    }
    task_of = {
        "bc5-chem": "ner",
        "ncbi-disease": "ner",
        "ebm-pico": "pico",
        "gad": "relation",
        "ddi": "relation",
        "biosses": "similarity",
        "hoc": "doc_classification",
        "pubmedqa": "qa",
        "bioasq": "qa",
    }
    b = metrics.blurb_score(scores, task_of)
    # task means: ner 85, pico 70, relation 70, similarity 50, doc 40, qa 40
    assert b["task_means"] == {
        "ner": 85,
        "pico": 70,
        "relation": 70,
        "similarity": 50,
        "doc_classification": 40,
        "qa": 40,
    }
    assert b["blurb_score"] == pytest.approx(355 / 6)
    assert b["blurb_score"] != pytest.approx(sum(scores.values()) / len(scores))
    assert b["n_task_types"] == 6


def test_metrics_reject_misaligned_input():
    with pytest.raises(ValueError):
        metrics.entity_f1([["B", "O"]], [["B"]])
    with pytest.raises(ValueError):
        metrics.relation_micro_f1(["1"], ["1", "0"], negative="0")
