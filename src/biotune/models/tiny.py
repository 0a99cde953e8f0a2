"""Tiny random-init shapes of the real architectures (a model's `random_init:` block): transformers builds each in
seconds with the real model classes, so tests, benchmarks and the GPU check train and predict through every code
path without downloading weights. One home for them: the test suite (tests/conftest.py, tests/test_engine.py) and
benchmarks/gpu_check.py read them here. Widths are multiples of 64: bitsandbytes' 4-bit CPU kernels work in blocks of
64. The tokenizer is the packaged SmolLM2's (encoders: MiniLM's)."""

from __future__ import annotations

LLAMA = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 1024,
}
# a GLM-style decoder: LLaMA's shape with an explicit head width
GLM = {**LLAMA, "head_dim": 16}
T5 = {"d_model": 64, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4, "d_kv": 16}
BERT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 512,
}
