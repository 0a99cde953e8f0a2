"""The perfect model's round trip: each NER / PICO example's training target, parsed back onto its tokens, scored
against the gold tags, on every dev and test split, in each output format (biotune.tasks.mentions).

The inline format names every occurrence: exact (100.0) everywhere. The list format cannot say which occurrence
of a repeated mention is meant; what it reaches is pinned here (measured; 2026-12-01)."""

import pytest

from biotune.data import get_spec, load_split
from biotune.tasks import task_for

LIST_FORMAT = {  # dataset -> (dev, test) entity F1 / word macro F1 of the list format's round trip
    "bc5-chem": (99.981, 99.963),
    "bc5-disease": (99.918, 99.989),
    "ncbi-disease": (99.937, 99.533),
    "bc2gm": (99.951, 99.968),
    "jnlpba": (99.616, 99.637),
    "ebm-pico": (99.561, 99.734),
}


def _round_trip(name, split, fmt, data_dir):
    task = task_for(get_spec(name), fmt)
    examples = load_split(name, split, data_dir).to_list()
    parsed = [task.parse(task.target(ex), ex) for ex in examples]
    assert all(p.ok for p in parsed)
    return task.score(examples, [p.value for p in parsed])["score"]


@pytest.mark.parametrize("name", sorted(LIST_FORMAT))
def test_round_trip_of_each_output_format(name, data_dir):
    for i, split in enumerate(("dev", "test")):
        assert _round_trip(name, split, "inline", data_dir) == 100.0
        assert round(_round_trip(name, split, "list", data_dir), 3) == LIST_FORMAT[name][i]
