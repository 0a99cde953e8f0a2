"""biotune: benchmark ways of adapting language models to biomedical NLP (BLURB)."""

__version__ = "0.1.0"
