"""Model families, one module each, registered in FAMILIES: causal (LLaMA and alike), seq2seq (T5 / FLAN-T5 /
UL2), glm (GLM-4), encoder (BERT-style, with task heads). Model references: aliases.py."""

from biotune.errors import BiotuneError, first_line

from . import causal, encoder, glm, seq2seq  # noqa: E402,F401  (registers the families)
from .aliases import ALIASES, resolve
from .base import FAMILIES, ModelFamily

__all__ = ["ALIASES", "FAMILIES", "ModelFamily", "family_of", "resolve"]


def family_of(name: str) -> str:
    """The family of a model (alias, folder or hub id) from its config: the first family that claims it (an
    encoder-decoder, GLM, a BERT-style encoder), else causal (decoder-only LMs; GGUF files are those)."""

    ref = resolve(name)
    if ref.gguf_file:
        return "causal"
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(ref.path)
    except (OSError, ValueError) as e:
        first = first_line(e)
        raise BiotuneError(
            f"cannot read the config of model {name!r} to tell its family ({first}); "
            "name it with --family causal|seq2seq|glm"
        ) from None
    return next((n for n, f in FAMILIES.items() if n != "causal" and f.claims(config)), "causal")
