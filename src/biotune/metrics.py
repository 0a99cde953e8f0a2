"""BLURB's official scoring rules (../shared/docs/blurb.md), one function each, plus the BLURB macro score.

Every function returns fractions in [0, 1]; the task layer reports them x100 as BLURB does.
Libraries are used where they compute exactly the rule: seqeval (conlleval entity matching), scikit-learn
(word-level and label-set F1, accuracy), scipy (Pearson).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np

# seqeval, scikit-learn and scipy are imported where a metric is computed (together over a second of imports
# that validating a config or printing an error does not need)


def _prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


def entity_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """NER: micro F1 over entities; an entity counts only with exact start, end and type (conlleval rules:
    an I after O starts an entity). BIO tags with or without a type suffix."""
    from seqeval.metrics import f1_score as seqeval_f1
    from seqeval.metrics import precision_score as seqeval_precision
    from seqeval.metrics import recall_score as seqeval_recall

    _check_aligned(gold, pred)
    kw = {"zero_division": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "precision": float(seqeval_precision(list(gold), list(pred), **kw)),
            "recall": float(seqeval_recall(list(gold), list(pred), **kw)),
            "f1": float(seqeval_f1(list(gold), list(pred), **kw)),
        }


def word_macro_f1(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], classes: Sequence[str]
) -> dict[str, float]:
    """EBM PICO: F1 per class at word level (the words tagged O count for no class), unweighted mean over the
    classes present in gold or prediction, as LinkBERT's code computes it (a class absent from both is left
    out, not counted as 0; none present at all: 0). `n_classes`: how many the mean ran over."""
    _check_aligned(gold, pred)
    g = [t for seq in gold for t in seq]
    p = [t for seq in pred for t in seq]
    present = [c for c in classes if c in set(g) | set(p)]
    out: dict = {}
    if present:
        from sklearn.metrics import precision_recall_fscore_support

        _, _, f, _ = precision_recall_fscore_support(g, p, labels=present, average=None, zero_division=0)
        out = {f"f1_{c}": float(x) for c, x in zip(present, f)}
    out["f1"] = float(np.mean(list(out.values()))) if out else 0.0
    out["n_classes"] = len(present)
    return out


def relation_micro_f1(gold: Sequence[str], pred: Sequence[str], negative: str) -> dict[str, float]:
    """ChemProt / DDI / GAD: TP = #(pred == gold != negative); P = TP / #(pred != negative);
    R = TP / #(gold != negative); each 0 when its denominator is 0."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    tp = sum(1 for g, p in zip(gold, pred) if g == p and p != negative)
    return _prf(tp, sum(p != negative for p in pred), sum(g != negative for g in gold))


def pearson(gold: Sequence[float], pred: Sequence[float]) -> dict[str, float | bool]:
    """BIOSSES: Pearson r. A constant prediction (or gold) makes r undefined: reported as 0 and flagged."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold scores but {len(pred)} predictions")
    g, p = np.asarray(gold, dtype=float), np.asarray(pred, dtype=float)
    if len(g) < 2 or np.ptp(p) == 0 or np.ptp(g) == 0:
        return {"pearson": 0.0, "undefined": True}
    from scipy.stats import pearsonr

    r = float(pearsonr(g, p).statistic)
    return {"pearson": 0.0 if math.isnan(r) else r, "undefined": math.isnan(r)}


def doc_label_micro_f1(
    doc_ids: Sequence[Hashable],
    gold: Sequence[Iterable[str]],
    pred: Sequence[Iterable[str]],
    labels: Sequence[str],
) -> dict[str, float]:
    """HoC: gold and predicted label sets are unioned per document (rows sharing a doc id, e.g. the
    sentences of one abstract), then P, R, F1 micro over all (document, label) cells."""
    if not (len(doc_ids) == len(gold) == len(pred)):
        raise ValueError("doc_ids, gold and pred must have the same length")
    g_doc: dict[Hashable, set] = defaultdict(set)
    p_doc: dict[Hashable, set] = defaultdict(set)
    for d, g, p in zip(doc_ids, gold, pred):
        g_doc[d] |= set(g)
        p_doc[d] |= set(p)
    docs = list(g_doc)
    from sklearn.preprocessing import MultiLabelBinarizer

    mlb = MultiLabelBinarizer(classes=list(labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # labels outside `labels` are ignored, as they are no cell
        G = mlb.fit_transform([g_doc[d] for d in docs])
        P = mlb.transform([p_doc[d] for d in docs])
    tp = int((G & P).sum())
    return _prf(tp, int(P.sum()), int(G.sum()))


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """PubMedQA / BioASQ."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold answers but {len(pred)} predictions")
    from sklearn.metrics import accuracy_score

    return {"accuracy": float(accuracy_score(list(gold), list(pred))) if gold else 0.0}


def blurb_score(scores: Mapping[str, float], task_of: Mapping[str, str]) -> dict:
    """BLURB macro score: mean over task types of the mean over that type's datasets.

    `scores`: dataset -> score; `task_of`: dataset -> task type. Returns the score, the per-task means and
    which task types were present (a complete BLURB score has all 6)."""
    by_task: dict[str, list[float]] = defaultdict(list)
    for name, score in scores.items():
        by_task[task_of[name]].append(score)
    task_means = {t: float(np.mean(v)) for t, v in by_task.items()}
    return {
        "blurb_score": float(np.mean(list(task_means.values()))) if task_means else float("nan"),
        "task_means": task_means,
        "n_task_types": len(task_means),
    }


# -- sufficient statistics --------------------------------------------------------------------------------------
# Each rule above is a function of per-example counts summed over the examples (F1 of summed (tp, predicted,
# gold) counts; Pearson r of summed moments; accuracy of summed hits), so a resampled score is one weighted sum
# per resample: what makes a bootstrap over seeds and examples cheap (biotune.report.stats). Tasks give the
# per-example rows (`Task.stats`) and score their sums (`Task.score_stats`); both are tested against the rules.


def f1_from_counts(tp, n_pred, n_gold):
    """F1 = 2PR / (P + R) (= 2 tp / (predicted + gold)), each 0 where its denominator is 0; vectorized. Computed in
    seqeval's order of operations (conlleval's, and the P / R / F of relation and HoC), so a score equals the rule's
    to the last bit."""
    tp, n_pred, n_gold = (np.asarray(x, dtype=float) for x in (tp, n_pred, n_gold))
    p = np.divide(tp, n_pred, out=np.zeros(np.broadcast(tp, n_pred).shape), where=n_pred > 0)
    r = np.divide(tp, n_gold, out=np.zeros(np.broadcast(tp, n_gold).shape), where=n_gold > 0)
    den = p + r
    return np.divide(2 * p * r, den, out=np.zeros_like(den), where=den > 0)


def dice_f1_from_counts(tp, n_pred, n_gold):
    """F1 as 2 tp / (predicted + gold), 0 where both are 0: scikit-learn's order of operations (its F-beta at beta 1,
    which EBM PICO's word-level rule uses), equal to it to the last bit; vectorized."""
    tp, den = np.asarray(tp, dtype=float), np.asarray(n_pred, dtype=float) + np.asarray(n_gold, dtype=float)
    return np.divide(2 * tp, den, out=np.zeros_like(den), where=den > 0)


def entity_counts(
    gold: Sequence[str], pred: Sequence[str], types: Sequence[str] = (), strict: bool = False
) -> tuple[int, ...]:
    """(tp, predicted, gold) entities of one sentence, by seqeval's entity rules: conlleval's (BLURB's: an `I-`
    after `O` or after another type starts an entity), or with `strict` IOB2's (seqeval's strict mode: such an
    `I-` starts none, so a span counts only when it begins with `B-`); then the same three counts for each of
    `types` (typed NER: a type's own F1)."""
    g, p = _entities(gold, strict), _entities(pred, strict)
    counts = [len(g & p), len(p), len(g)]
    for t in types:
        gt, pt = {x for x in g if x[0] == t}, {x for x in p if x[0] == t}
        counts += [len(gt & pt), len(pt), len(gt)]
    return tuple(counts)


def _entities(tags: Sequence[str], strict: bool) -> set[tuple[str, int, int]]:
    """(type, start, end) of each entity of one tag sequence ('_' as the type of untyped B / I tags)."""
    if strict:
        from seqeval.scheme import IOB2, Entities

        return {(e.tag, e.start, e.end) for e in Entities([list(tags)], IOB2).entities[0]}
    from seqeval.metrics.sequence_labeling import get_entities

    return set(get_entities(list(tags)))


def _pearson_parts(m):
    m = np.asarray(m, dtype=float)
    n, sx, sy, sxx, syy, sxy = (m[..., i] for i in range(6))
    vx, vy = n * sxx - sx * sx, n * syy - sy * sy
    den = np.sqrt(np.clip(vx, 0, None) * np.clip(vy, 0, None))
    ok = (den > 1e-12 * np.maximum(1.0, n * n)) & (n >= 2)
    return n * sxy - sx * sy, den, ok


def pearson_from_moments(m):
    """Pearson r from summed moments (n, Σx, Σy, Σx², Σy², Σxy) on the last axis; 0 where undefined."""
    num, den, ok = _pearson_parts(m)
    return np.divide(num, den, out=np.zeros_like(den), where=ok)


def pearson_defined(m):
    """Whether Pearson r is defined for summed moments: two values or more, neither side constant."""
    return _pearson_parts(m)[2]


def _check_aligned(gold, pred) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sequences but {len(pred)} predicted")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sequence {i}: {len(g)} gold tags but {len(p)} predicted")
