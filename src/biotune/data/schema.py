"""Typed example schemas, one per kind of input. Every loader yields `datasets.Dataset` splits in one of these.

| schema          | task types   | fields                                                              |
|-----------------|--------------|---------------------------------------------------------------------|
| token_tagging   | ner, pico    | id, doc_id, tokens: [str], tags: [str]                              |
| relation        | relation     | id, text (entities marked, e.g. @GENE$), label                      |
| sentence_pair   | similarity   | id, sentence1, sentence2, score (float)                             |
| document_labels | doc_class.   | id (doc id), sentences, sentence_ids, sentence_labels, labels (set) |
| qa              | qa           | id, question, context, answer                                       |
"""

from functools import cache

SCHEMA_NAMES = ("token_tagging", "relation", "sentence_pair", "document_labels", "qa")


@cache
def features(schema: str):
    """The `datasets.Features` of a schema (`datasets` imported on first use: validating a config needs none)."""
    from datasets import Features, Sequence, Value

    text = Value("string")
    return {
        "token_tagging": Features({"id": text, "doc_id": text, "tokens": Sequence(text), "tags": Sequence(text)}),
        "relation": Features({"id": text, "text": text, "label": text}),
        "sentence_pair": Features({"id": text, "sentence1": text, "sentence2": text, "score": Value("float64")}),
        "document_labels": Features({"id": text, "sentences": Sequence(text), "sentence_ids": Sequence(text),
                                     "sentence_labels": Sequence(Sequence(text)), "labels": Sequence(text)}),
        "qa": Features({"id": text, "question": text, "context": text, "answer": text}),
    }[schema]
