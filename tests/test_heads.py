"""The encoder's task heads (biotune.models.heads): each head's training labels, decoded from logits that put all
weight on them, give back the gold answer of real BLURB examples in the metric's structure."""

import pytest
import torch

from biotune.config import ModelConfig
from biotune.data import get_spec, load_split
from biotune.models import FAMILIES
from biotune.models.encoder import label_list
from biotune.models.heads import HEADS, IGNORE
from biotune.tasks import task_for
from conftest import TINY_BERT


def _logits_for(head, enc, labels):
    """Logits that say exactly the training labels of one encoded example."""
    y = enc["labels"]
    if head.name == "token_classification":
        out = torch.full((len(y), len(labels)), -10.0)
        for pos, k in enumerate(y):
            if k != IGNORE:
                out[pos, k] = 10.0
        return out
    if head.name == "multi_label":
        return torch.tensor([10.0 if v else -10.0 for v in y])
    if head.name == "regression":
        return torch.tensor([y])
    out = torch.full((len(labels),), -10.0)
    out[y] = 10.0
    return out


@pytest.mark.parametrize("dataset", ["ncbi-disease", "ebm-pico", "gad", "bioasq", "hoc", "biosses"])
def test_labels_decode_back_to_the_gold_answer(dataset, data_dir):
    spec = get_spec(dataset)
    encoder = FAMILIES.get("encoder")
    head = HEADS.get(encoder.head_for(spec.task))
    tokenizer = encoder.load_tokenizer(ModelConfig(family="encoder", path="minilm"))
    task, labels = task_for(spec, None), label_list(spec)
    examples = load_split(dataset, "dev", str(data_dir)).select(range(5))
    for ex in examples:
        x, gold = task.encoder_input(ex), task.gold(ex)
        enc = head.encode(tokenizer, x, gold, labels, max_length=512)
        pred = head.decode(_logits_for(head, enc, labels), labels, head.word_starts(tokenizer, x, 512))
        if head.name == "multi_label":
            assert sorted(pred) == sorted(gold)
        elif head.name == "regression":
            assert pred == pytest.approx(float(gold))
        else:
            assert pred == gold
    # a sentence cut off by max_length: its last words stay O
    if head.token_level:
        x = task.encoder_input(examples[0])
        starts = head.word_starts(tokenizer, x, 8)
        assert starts[-1] is None and head.decode(torch.zeros(8, len(labels)), labels, starts)[-1] == "O"


def test_each_head_builds_its_transformers_class_and_config():
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    labels = ["O", "B", "I"]
    assert HEADS.get("token_classification").auto_class() is AutoModelForTokenClassification
    assert HEADS.get("multi_label").auto_class() is AutoModelForSequenceClassification
    assert HEADS.get("regression").config_kwargs(labels) == {"num_labels": 1, "problem_type": "regression"}
    assert HEADS.get("multi_label").config_kwargs(labels)["problem_type"] == "multi_label_classification"
    assert HEADS.get("sequence_classification").config_kwargs(labels)["id2label"] == {0: "O", 1: "B", 2: "I"}
    # soft prompts pad logits, not labels, of token heads; the cosine head reads two inputs per example
    assert [n for n, h in HEADS.items() if not h.soft_prompts_fit] == ["token_classification", "cosine_similarity"]
    assert {n for n, h in HEADS.items() if h.token_level} == {"lm", "token_classification"}


# -- the pooler a sequence-level head reads (HoC and BIOSSES did not learn with MiniLM) ----------------------------


def test_a_mean_pooled_sentence_encoders_pooler_starts_as_the_identity_for_sequence_heads_only():
    from biotune.config import ExperimentConfig
    from biotune.identity import identity

    def pooler(dataset, **model):
        return ExperimentConfig(
            dataset=dataset, model={"family": "encoder", "path": "minilm", **model}, method={"name": "fft"}
        )

    for dataset in ("hoc", "gad", "bioasq"):  # multi_label, sequence_classification
        assert pooler(dataset).model.pooler == "identity"
    assert pooler("biosses", head="regression").model.pooler == "identity"
    assert pooler("ncbi-disease").model.pooler == "checkpoint"  # a token head reads no pooler
    assert pooler("hoc", pooler="checkpoint").model.pooler == "checkpoint"  # said explicitly: kept
    tiny = {
        "random_init": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    }
    assert pooler("hoc", **tiny).model.pooler == "checkpoint"  # no checkpoint to speak of
    # the identity records the pooler only where it is not the checkpoint's (every earlier result keeps its hash)
    assert identity(pooler("hoc"))["experiment"]["model"]["pooler"] == "identity"
    assert "pooler" not in identity(pooler("ncbi-disease"))["experiment"]["model"]


def test_minilms_own_pooler_maps_every_document_to_nearly_one_vector_and_the_identity_does_not(data_dir):
    """The cause, measured on real HoC abstracts: all-MiniLM-L6-v2 was trained with mean pooling, and its BERT
    pooler (dense + tanh) barely varies across documents, so a classifier on it starts blind."""
    from biotune.config import ModelConfig
    from biotune.models.encoder import identity_pooler

    encoder = FAMILIES.get("encoder")
    spec = get_spec("hoc")
    mcfg = ModelConfig(family="encoder", path="minilm", pooler="checkpoint")
    model, tokenizer = encoder.load(mcfg, spec, "multi_label", torch.device("cpu"), torch.float32)
    docs = [" ".join(ex["sentences"]) for ex in load_split("hoc", "dev", str(data_dir)).select(range(16))]
    enc = tokenizer(docs, truncation=True, max_length=128, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.base_model(**enc)
        first = out.last_hidden_state[:, 0]
        own = out.pooler_output
        identity_pooler(model)
        passed = model.base_model(**enc).pooler_output
    spread = {name: float(x.std(0).mean()) for name, x in (("first", first), ("own", own), ("identity", passed))}
    assert spread["own"] < spread["first"] / 3, spread
    assert torch.allclose(passed, torch.tanh(first), atol=1e-5) and spread["identity"] > spread["first"] / 2, spread


def test_a_sparse_multi_label_head_learns_a_constructed_task_it_can_solve(tmp_path):
    """Ten labels, 1.3 a document on average and one document in six with none (HoC's shape); a label is present
    exactly when its keyword is in the text. MiniLM fully fine-tuned at the method's default learning rate (its new
    head at 10x, biased to the label prior, its untrained pooler started as the identity) must name the labels,
    not fall back to the prior (nothing at all), which is what HoC's runs did."""
    import json
    import random

    import yaml

    from biotune.config import ExperimentConfig
    from biotune.train import run_experiment

    keywords = [
        "apoptosis",
        "angiogenesis",
        "metastasis",
        "inflammation",
        "telomerase",
        "glycolysis",
        "mutation",
        "proliferation",
        "immunity",
        "senescence",
    ]
    filler = (
        "the study cells were patients results data analysis group level model effect treatment found "
        "increased reduced expression protein observed during significant after using both"
    ).split()
    rng = random.Random(0)

    def doc(i):
        k = rng.choices([0, 1, 2, 3], weights=[1, 3, 1.5, 0.5])[0]
        labels = rng.sample(range(10), k)
        # 8 words of one word piece, 3 keywords of 10 at most, [CLS] and [SEP]: 20 tokens, under max_length
        words = [rng.choice(filler) for _ in range(8)]
        for j in labels:
            words.insert(rng.randrange(len(words) + 1), keywords[j])
        return {"id": str(i), "text": " ".join(words), "labels": [f"h{j}" for j in labels]}

    for split, n in (("train", 240), ("dev", 40), ("test", 80)):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(doc(i)) + "\n" for i in range(n)))
    (tmp_path / "hallmarks.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "hallmarks",
                "task": "doc_classification",
                "labels": [f"h{j}" for j in range(10)],
                "source": {"format": "jsonl", "splits": {s: f"{s}.jsonl" for s in ("train", "dev", "test")}},
            }
        )
    )
    cfg = ExperimentConfig(
        dataset=str(tmp_path / "hallmarks.yaml"),
        model={"family": "encoder", "path": "minilm"},
        method={"name": "fft"},
        keep="none",
        output_dir=str(tmp_path / "run"),
        # one dev evaluation, at the end: no checkpoint of the whole model is written on the way
        training={"epochs": 8, "batch_size": 16, "max_length": 24, "eval_steps": 120},
    )
    assert (cfg.model.pooler, cfg.model.head_bias, cfg.training.head_lr_scale) == ("identity", "prior", 10.0)
    summary = run_experiment(cfg, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    named = sum(1 for r in rows if r["prediction"])
    assert summary["metrics"]["score"] >= 70, summary["metrics"]
    assert named >= 0.7 * sum(1 for r in rows if r["gold"]), named


def _tiny_regression_bert():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(
        BertConfig(
            vocab_size=100,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_labels=1,
            problem_type="regression",
        )
    ).eval()


@pytest.mark.parametrize("wrapped", [False, True], ids=["fft", "lora"])
def test_a_score_heads_output_is_computed_in_fp32_under_bf16_autocast(wrapped):
    """BIOSSES predictions came out as multiples of 1/64 near 3 (bf16's 8 significant bits): the trained model's
    forward runs under bf16 autocast (accelerate wraps it), the score head included. With precise_head the head
    computes in fp32 — the body still in bf16 — for a plain model (FFT) and under peft's copy of the head (LoRA)."""
    model = _tiny_regression_bert()
    if wrapped:
        from peft import LoraConfig, get_peft_model

        # as Experiment.setup has it: the frozen base in bf16, what trains (adapters, the head's copy) in fp32
        model = get_peft_model(
            model.to(torch.bfloat16), LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"])
        )
        for p in model.parameters():
            if p.requires_grad:
                p.data = p.data.float()
    base = model.get_base_model() if wrapped else model
    ids = torch.randint(0, 100, (8, 12))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        before = model(input_ids=ids).logits
        pooled = base.bert(input_ids=ids).pooler_output  # the head's input, as computed in bf16
        assert before.dtype == torch.bfloat16 and pooled.dtype == torch.bfloat16
        assert FAMILIES.get("encoder").precise_head(model) == 1
        after = model(input_ids=ids).logits
    classifier = base.classifier
    head = classifier.modules_to_save["default"] if wrapped else classifier
    expected = torch.nn.functional.linear(pooled.float(), head.weight.float(), head.bias.float())
    assert after.dtype == torch.float32
    assert torch.allclose(after, expected, atol=1e-6), (after, expected)
    assert torch.allclose(after, before.float(), atol=0.05)  # the same prediction, at full precision
    assert not torch.equal(after, before.float())
    # a score of 8 significant bits lies on a grid of 1/64 between 2 and 4 (what the predictions were); fp32 does not
    assert all(v * 2**16 != round(v * 2**16) for v in after.flatten().tolist()), after


def test_only_a_score_head_under_bf16_puts_its_precision_in_the_identity(tmp_path):
    from biotune.config import validate_experiment
    from biotune.identity import identity

    def ident(dataset, bf16):
        head = {"head": "regression"} if dataset == "biosses" else {}  # the score head (not the cosine one)
        return identity(
            validate_experiment(
                {
                    "dataset": dataset,
                    "model": {"family": "encoder", "path": "minilm", **head},
                    "method": {"name": "fft"},
                    "training": {"bf16": bf16},
                    "device": "cpu",
                    "output_dir": str(tmp_path / "x"),
                }
            )
        )["experiment"]

    assert ident("biosses", True).get("head_precision") == "float32"
    assert "head_precision" not in ident("biosses", False)
    assert "head_precision" not in ident("gad", True)  # class heads: results and identities as before


def test_the_cosine_head_scores_a_pair_as_the_cosine_of_its_mean_pooled_sentences_times_the_scale():
    from transformers import BertConfig, BertModel

    from biotune.models.biencoder import BertBiEncoderForSimilarity

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4
    )
    model = BertBiEncoderForSimilarity.from_config(config).eval()
    model.config.similarity_scale = 4.0
    a, b = torch.randint(1, 100, (3, 7)), torch.randint(1, 100, (3, 5))
    mask_a, mask_b = torch.ones_like(a), torch.ones_like(b)
    mask_a[0, 4:] = 0  # a padded first sentence: its padding is left out of the mean
    with torch.no_grad():
        out = model(
            input_ids=a,
            attention_mask=mask_a,
            input_ids_b=b,
            attention_mask_b=mask_b,
            labels=torch.tensor([4.0, 0.0, 2.0]),
        )
        body = model.bert
        assert isinstance(body, BertModel) and body.pooler is None

        def mean(ids, mask):
            h = body(input_ids=ids, attention_mask=mask).last_hidden_state
            return (h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)

        cosine = torch.nn.functional.cosine_similarity(mean(a, mask_a), mean(b, mask_b), dim=-1)
    assert torch.allclose(out.logits.squeeze(-1), 4 * cosine, atol=1e-5)
    assert out.loss == pytest.approx(float(((cosine - torch.tensor([1.0, 0.0, 0.5])) ** 2).mean()), abs=1e-6)


@pytest.mark.parametrize("method", ["fft", "lora"])
def test_the_cosine_head_trains_and_predicts_biosses_pairs_on_a_bert(tmp_path, method):
    """`model.head: cosine_similarity` (the bi-encoder alternative for similarity): its scale set from the
    training scores, a full fine-tune and a LoRA run, one score per test pair."""
    import json

    from biotune.config import validate_experiment
    from biotune.train import run_experiment

    cfg = validate_experiment(
        {
            "dataset": "biosses",
            "model": {**TINY_BERT, "head": "cosine_similarity"},
            "method": {"name": method},
            "training": {"max_steps": 4, "batch_size": 4, "train_limit": 8, "dev_limit": 4, "max_length": 64},
            "eval": {"limit": 6},
            "output_dir": str(tmp_path / method),
        }
    )
    assert (cfg.model.pooler, cfg.training.head_lr_scale) == ("checkpoint", 1.0)  # no pooler, no new weights
    summary = run_experiment(cfg, progress=False)
    rows = [json.loads(line) for line in (tmp_path / method / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(isinstance(r["prediction"], float) for r in rows)
    assert all(abs(r["prediction"]) <= 4.0 + 1e-6 for r in rows)  # cosine x the largest training score
    assert summary["dev"]["from"] == "training" and summary["training"]["steps"] == 4
    # 6 of the 20 test pairs: the split's size recorded, and a subset's score is no BLURB-comparable claim
    assert (summary.metrics["n"], summary.metrics["n_total"], summary.blurb_comparable) == (6, 20, False)
    with pytest.raises(Exception, match="cosine_similarity"):  # a similarity head only
        validate_experiment(
            {
                "dataset": "gad",
                "model": {"family": "encoder", "path": "minilm", "head": "cosine_similarity"},
                "method": {"name": "fft"},
            }
        )


def test_a_mean_pooled_sentence_encoder_gets_the_cosine_head_on_similarity_and_its_identity_says_so():
    """all-MiniLM-L6-v2 (sentence-transformers, mean pooling) on BIOSSES: the cosine head by default, recorded in
    the config and the identity; a checkpoint without sentence pooling, a soft-prompt method (which the cosine head
    does not fit) and other task types keep their heads, and their identities as before (no `head` key)."""
    from biotune.config import ExperimentConfig
    from biotune.identity import identity

    def config(dataset, method="fft", **model):
        return ExperimentConfig(
            dataset=dataset, model={"family": "encoder", "path": "minilm", **model}, method={"name": method}
        )

    chosen = config("biosses")
    assert chosen.model.head == "cosine_similarity" and chosen.model.pooler == "checkpoint"
    assert identity(chosen)["experiment"]["model"]["head"] == "cosine_similarity"
    assert config("biosses", method="lora").model.head == "cosine_similarity"
    assert config("biosses", method="ptuning").model.head == "regression"  # two inputs: no soft prompt fits
    assert config("biosses", head="regression").model.head == "regression"  # asked for: kept
    tiny = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
    assert config("biosses", random_init=tiny).model.head is None  # no checkpoint: the task's regression head
    for dataset in ("gad", "hoc", "ncbi-disease"):
        assert config(dataset).model.head is None
        assert identity(config(dataset))["experiment"]["model"].get("head") is None


def test_loading_says_in_one_line_which_head_was_created_and_warns_of_anything_else(capfd):
    """transformers' load report (a table of missing keys) is replaced by one line: a new task head is expected;
    other missing or unused weights are still said, as a warning. On the real MiniLM: the classifier is new."""
    from biotune.config import ExperimentConfig
    from biotune.models import FAMILIES

    encoder = FAMILIES.get("encoder")
    line = encoder.describe_loading("multi_label", {"missing_keys": ["classifier.weight", "classifier.bias"]})
    assert line.startswith("a new multi_label head (classifier.bias, classifier.weight) was created")
    odd = encoder.describe_loading(
        "multi_label", {"missing_keys": ["classifier.bias", "bert.encoder.layer.0.output.dense.weight"]}
    )
    assert "warning: weights not in the checkpoint, initialised at random: bert.encoder.layer.0" in odd
    assert encoder.describe_loading("multi_label", {"missing_keys": [], "unexpected_keys": []}) == ""

    import torch

    from biotune.data import get_spec

    cfg = ExperimentConfig(dataset="hoc", model={"family": "encoder", "path": "minilm"}, method={"name": "fft"})
    encoder.load(cfg.model, get_spec("hoc"), "multi_label", torch.device("cpu"), None)
    err = capfd.readouterr().err
    assert "a new multi_label head (classifier.bias, classifier.weight) was created" in err
    assert "LOAD REPORT" not in err and "MISSING" not in err
