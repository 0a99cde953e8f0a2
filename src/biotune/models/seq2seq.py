"""Encoder-decoder LMs: T5, FLAN-T5, UL2. The prompt goes to the encoder, the answer is decoded."""

from __future__ import annotations

from .base import ModelFamily, register


@register
class Seq2SeqFamily(ModelFamily):
    name = "seq2seq"
    peft_task_type = "SEQ_2_SEQ_LM"

    def claims(self, config):
        return bool(getattr(config, "is_encoder_decoder", False))

    @property
    def config_class(self):
        from transformers import T5Config

        return T5Config

    def random_config(self, mcfg, tokenizer):
        config = super().random_config(mcfg, tokenizer)
        if getattr(config, "decoder_start_token_id", None) is None:
            config.decoder_start_token_id = tokenizer.pad_token_id  # T5 starts decoding from the pad token
        return config

    def auto_class(self, head: str):
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM
