"""The 13 BLURB datasets load with exactly the sizes in ../shared/docs/blurb.md ("measured" column)."""

import shutil

import pytest

from biotune.data import DATASETS, load_split, split_exists
from biotune.errors import BiotuneError, DataFormatError, MissingSplitError

# dataset -> split -> size (sentences for NER/PICO, pairs, documents, questions); None = not in ../shared
SIZES = {
    "bc5-chem": {"train": 4560, "dev": 4581, "test": 4797},
    "bc5-disease": {"train": 4560, "dev": 4581, "test": 4797},
    "ncbi-disease": {"train": 5424, "dev": 923, "test": 940},
    "bc2gm": {"train": 12574, "dev": 2519, "test": 5038},
    "jnlpba": {"train": 16807, "dev": 1739, "test": 3856},
    "ebm-pico": {"train": None, "dev": 10386, "test": 2076},
    "chemprot": {"train": 18035, "dev": 11268, "test": 15745},
    "ddi": {"train": 25296, "dev": 2496, "test": 5716},
    "gad": {"train": 4261, "dev": 535, "test": 534},
    "biosses": {"train": 64, "dev": 16, "test": 20},
    "hoc": {"train": 1295, "dev": 186, "test": 371},
    "pubmedqa": {"train": 450, "dev": 50, "test": 500},
    "bioasq": {"train": 670, "dev": 75, "test": 140},
}
# NER entity mentions = B tags (BC5-disease dev has 4246 in the files vs 4244 in the BLURB paper)
B_TAGS = {
    "bc5-chem": (5203, 5347, 5385),
    "bc5-disease": (4182, 4246, 4424),
    "ncbi-disease": (5134, 787, 960),
    "bc2gm": (15197, 3061, 6325),
    "jnlpba": (46750, 4551, 8662),
}
HOC_SENTENCES = {"train": 12119, "dev": 1798, "test": 3547}
PICO_NON_O_WORDS = {"dev": 87308, "test": 16364}


def test_catalog_has_the_13_blurb_datasets():
    assert sorted(DATASETS.names()) == sorted(SIZES)
    tasks = {}
    for _, spec in DATASETS.items():
        tasks.setdefault(spec.task, []).append(spec.name)
    assert {t: len(v) for t, v in tasks.items()} == {
        "ner": 5,
        "pico": 1,
        "relation": 3,
        "similarity": 1,
        "doc_classification": 1,
        "qa": 2,
    }


@pytest.mark.parametrize("name,split", [(n, s) for n in SIZES for s in ("train", "dev", "test")])
def test_split_sizes(name, split, data_dir):
    expected = SIZES[name][split]
    spec = DATASETS.get(name)
    if expected is None:
        assert not split_exists(spec, split, data_dir)
        with pytest.raises(MissingSplitError) as e:
            load_split(name, split, data_dir)
        msg = str(e.value)
        assert str(data_dir / spec.files[split]) in msg and "--data-dir" in msg
        return
    assert len(load_split(name, split, data_dir)) == expected


@pytest.mark.parametrize("name", sorted(B_TAGS))
def test_ner_entity_counts(name, data_dir):
    for split, expected in zip(("train", "dev", "test"), B_TAGS[name]):
        ds = load_split(name, split, data_dir)
        assert sum(tags.count("B") for tags in ds["tags"]) == expected
        assert set(t for tags in ds["tags"] for t in tags) <= {"B", "I", "O"}


def test_pico_words_and_documents(data_dir):
    for split, expected in PICO_NON_O_WORDS.items():
        ds = load_split("ebm-pico", split, data_dir)
        assert sum(t != "O" for tags in ds["tags"] for t in tags) == expected
    assert len(set(load_split("ebm-pico", "dev", data_dir)["doc_id"])) == 960
    assert len(set(load_split("ebm-pico", "test", data_dir)["doc_id"])) == 191


def test_hoc_documents_keep_their_sentences(data_dir):
    for split, n_sentences in HOC_SENTENCES.items():
        ds = load_split("hoc", split, data_dir)
        assert sum(len(s) for s in ds["sentences"]) == n_sentences
        for doc in ds.select(range(20)):
            assert all(sid.rsplit("_", 1)[0] == doc["id"] for sid in doc["sentence_ids"])
            union = {label for labels in doc["sentence_labels"] for label in labels}
            assert set(doc["labels"]) == union


def test_label_distributions_match_sources(data_dir):
    from collections import Counter

    assert Counter(load_split("pubmedqa", "test", data_dir)["answer"]) == {"yes": 276, "no": 169, "maybe": 55}
    assert Counter(load_split("bioasq", "train", data_dir)["answer"]) == {"yes": 552, "no": 118}
    assert Counter(load_split("gad", "train", data_dir)["label"]) == {"1": 2227, "0": 2034}
    ddi = Counter(load_split("ddi", "train", data_dir)["label"])
    assert ddi == {"DDI-false": 21745, "DDI-effect": 1486, "DDI-mechanism": 1163, "DDI-advise": 725, "DDI-int": 177}


def _copy(data_dir, tmp_path, folder):
    shutil.copytree(data_dir / folder, tmp_path / folder)
    return tmp_path


@pytest.mark.parametrize(
    "folder,name,file,bad_line,needle",
    [
        ("NCBI-disease", "ncbi-disease", "dev.tsv", "Aspirin\tX\n", "unknown tag 'X'"),
        ("NCBI-disease", "ncbi-disease", "dev.tsv", "no tab here\n", "expected 'token<TAB>tag'"),
        ("GAD", "gad", "dev.tsv", "7\tsome sentence\t2\n", "unknown label '2'"),
        ("BIOSSES", "biosses", "dev.tsv", "1\ta\tb\thigh\n", "is not a number"),
        ("BioASQ", "bioasq", "dev.tsv", "only\ttwo\n", "expected 4 tab-separated columns"),
        ("HoC", "hoc", "dev.tsv", "0_2,1_0\tA sentence .\t123_s0\n", "bad label flag '0_2'"),
    ],
)
def test_malformed_line_names_file_and_line(data_dir, tmp_path, folder, name, file, bad_line, needle):
    root = _copy(data_dir, tmp_path, folder)
    path = root / folder / file
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(5, bad_line)  # becomes line 6
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataFormatError) as e:
        load_split(name, "dev", str(root))
    assert str(e.value).startswith(f"{path}:6: ")
    assert needle in str(e.value)


def test_url_loader_reads_the_same_files(data_dir, tmp_path, monkeypatch):
    """The URL/hub path (fsspec) fetched into the cache, tested on a file:// URL (no network)."""
    monkeypatch.setenv("BIOTUNE_CACHE", str(tmp_path / "cache"))
    url = f"file://{data_dir}"
    remote = load_split("gad", "test", url)
    assert remote.to_list() == load_split("gad", "test", data_dir).to_list()
    assert list((tmp_path / "cache" / "data").rglob("GAD/test.tsv"))
    with pytest.raises(MissingSplitError):
        load_split("ebm-pico", "train", url)


def test_data_dir_resolution(tmp_path, monkeypatch):
    with pytest.raises(BiotuneError, match="does not exist"):
        load_split("gad", "dev", str(tmp_path / "nope"))
    monkeypatch.setenv("BIOTUNE_DATA", str(tmp_path / "nope2"))
    with pytest.raises(BiotuneError, match=r"\$BIOTUNE_DATA"):
        load_split("gad", "dev")


def test_a_split_is_cast_exactly_as_datasets_casts_it_on_every_blurb_split(data_dir):
    """Splits load without `datasets` (biotune.data.schema.Split); each field is cast to its schema's type the
    way `datasets.Features` casts it, so every BLURB split reads the same either way."""
    import datasets

    from biotune.data.catalog import FORMATS, split_file
    from biotune.data.schema import Split
    from biotune.tasks import TASKS

    def feature(kind):
        if isinstance(kind, list):
            return datasets.Sequence(feature(kind[0]))
        return datasets.Value("float64" if kind == "float" else "string")

    compared = 0
    for _name, spec in DATASETS.items():
        fields = TASKS.get(spec.task).fields
        typed = datasets.Features({f: feature(k) for f, k in fields.items()})
        for split in spec.files:
            if not split_exists(spec, split, str(data_dir)):
                continue
            rows = FORMATS.get(spec.format)(str(split_file(spec, split, str(data_dir))), spec)
            want = datasets.Dataset.from_list(rows, features=typed).to_list()
            assert Split(rows, fields, spec.schema).to_list() == want
            compared += 1
    assert compared == 38  # every split in ../shared (EBM PICO train is missing)
    ds = load_split("gad", "dev", str(data_dir))
    row = ds[0]
    row["text"] = "changed"
    assert ds[0]["text"] != "changed"  # a caller's edit never reaches the cached split
    assert ds.select([2, 0]).to_list() == [ds[2], ds[0]] and ds.column_names == ["id", "text", "label"]
