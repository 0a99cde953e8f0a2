"""The 13 BLURB datasets (Gu et al. 2021), as the BLURB data-generation pipeline writes them.

Adding a dataset = one more `register(DatasetSpec(...))` here or in a new module imported by
`biotune.data`. Facts and counts: ../shared/docs/blurb.md and the data folder's SOURCES.md.
"""

from .catalog import DatasetSpec, register

_BIO = ("B", "I", "O")
_GEN_HINT = (
    "This file is not in the bundled data; create it with BLURB's data-generation pipeline "
    "(https://microsoft.github.io/BLURB/sample_code/data_generation.tar.gz, see data/README.md)"
)


def _split_files(folder: str, ext: str = "tsv") -> dict[str, str]:
    return {s: f"{folder}/{s}.{ext}" for s in ("train", "dev", "test")}


def _ner(name: str, title: str, folder: str, entity: str) -> DatasetSpec:
    return register(
        DatasetSpec(
            name=name, title=title, task="ner", schema="token_tagging", format="conll_tags",
            files=_split_files(folder), tags=_BIO, entity=entity,
        )
    )


_ner("bc5-chem", "BC5-chem", "BC5CDR-chem", "chemical")
_ner("bc5-disease", "BC5-disease", "BC5CDR-disease", "disease")
_ner("ncbi-disease", "NCBI-disease", "NCBI-disease", "disease")
_ner("bc2gm", "BC2GM", "BC2GM", "gene or protein")
_ner("jnlpba", "JNLPBA", "JNLPBA", "protein, DNA, RNA, cell line or cell type")

register(
    DatasetSpec(
        name="ebm-pico", title="EBM PICO", task="pico", schema="token_tagging", format="conll_tags",
        files=_split_files("ebmnlp"), tags=("O", "I-PAR", "I-INT", "I-OUT"),
        label_names={"I-PAR": "Participants", "I-INT": "Interventions", "I-OUT": "Outcomes"},
        missing_hint=_GEN_HINT + " (EBM-NLP 2.0 corpus: https://github.com/bepnye/EBM-NLP)",
    )
)

register(
    DatasetSpec(
        name="chemprot", title="ChemProt", task="relation", schema="relation", format="tsv_table",
        files=_split_files("chemprot"), columns=("id", "text", "label"),
        labels=("CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9", "false"), negative="false",
        label_names={
            "CPR:3": "activator", "CPR:4": "inhibitor", "CPR:5": "agonist", "CPR:6": "antagonist",
            "CPR:9": "substrate", "false": "none",
        },
        missing_hint=_GEN_HINT + " (the ChemProt corpus needs registration at BioCreative VI)",
    )
)
register(
    DatasetSpec(
        name="ddi", title="DDI", task="relation", schema="relation", format="tsv_table",
        files=_split_files("DDI"), columns=("id", "text", "label"),
        labels=("DDI-advise", "DDI-effect", "DDI-int", "DDI-mechanism", "DDI-false"), negative="DDI-false",
        label_names={
            "DDI-advise": "advise", "DDI-effect": "effect", "DDI-int": "interaction",
            "DDI-mechanism": "mechanism", "DDI-false": "none",
        },
    )
)
register(
    DatasetSpec(
        name="gad", title="GAD", task="relation", schema="relation", format="tsv_table",
        files=_split_files("GAD"), columns=("id", "text", "label"), header=True,
        labels=("1", "0"), negative="0", label_names={"1": "yes", "0": "no"},
    )
)
register(
    DatasetSpec(
        name="biosses", title="BIOSSES", task="similarity", schema="sentence_pair", format="tsv_table",
        files=_split_files("BIOSSES"), columns=("id", "sentence1", "sentence2", "score"), header=True,
    )
)
register(
    DatasetSpec(
        name="hoc", title="HoC", task="doc_classification", schema="document_labels", format="hoc_tsv",
        files=_split_files("HoC"),
        # index i of the `i_x` flags in BLURB's files (BLUE's label order)
        labels=(
            "activating invasion and metastasis", "avoiding immune destruction", "cellular energetics",
            "enabling replicative immortality", "evading growth suppressors",
            "genomic instability and mutation", "inducing angiogenesis", "resisting cell death",
            "sustaining proliferative signaling", "tumor promoting inflammation",
        ),
    )
)
register(
    DatasetSpec(
        name="pubmedqa", title="PubMedQA", task="qa", schema="qa", format="pubmedqa_json",
        files={
            "train": "pubmedqa/blurb_split_generated/pqal_fold0/train_set.json",
            "dev": "pubmedqa/blurb_split_generated/pqal_fold0/dev_set.json",
            "test": "pubmedqa/blurb_split_generated/test_set.json",
        },
        labels=("yes", "no", "maybe"),
    )
)
register(
    DatasetSpec(
        name="bioasq", title="BioASQ", task="qa", schema="qa", format="tsv_table",
        files=_split_files("BioASQ"), columns=("id", "question", "context", "answer"), labels=("yes", "no"),
    )
)
