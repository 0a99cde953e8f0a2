"""Typed example schemas, one per kind of input. Every loader yields `datasets.Dataset` splits in one of these.

| schema          | task types   | fields                                                              |
|-----------------|--------------|---------------------------------------------------------------------|
| token_tagging   | ner, pico    | id, doc_id, tokens: [str], tags: [str]                              |
| relation        | relation     | id, text (entities marked, e.g. @GENE$), label                      |
| sentence_pair   | similarity   | id, sentence1, sentence2, score (float)                             |
| document_labels | doc_class.   | id (doc id), sentences, sentence_ids, sentence_labels, labels (set) |
| qa              | qa           | id, question, context, answer                                       |
"""

from datasets import Features, Sequence, Value

_str = Value("string")

SCHEMAS: dict[str, Features] = {
    "token_tagging": Features(
        {"id": _str, "doc_id": _str, "tokens": Sequence(_str), "tags": Sequence(_str)}
    ),
    "relation": Features({"id": _str, "text": _str, "label": _str}),
    "sentence_pair": Features(
        {"id": _str, "sentence1": _str, "sentence2": _str, "score": Value("float64")}
    ),
    "document_labels": Features(
        {
            "id": _str,
            "sentences": Sequence(_str),
            "sentence_ids": Sequence(_str),
            "sentence_labels": Sequence(Sequence(_str)),
            "labels": Sequence(_str),
        }
    ),
    "qa": Features({"id": _str, "question": _str, "context": _str, "answer": _str}),
}
