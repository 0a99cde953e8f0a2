"""A sentence pair scored as a sentence-transformers model scores it: each sentence encoded on its own, its token
vectors mean-pooled, the pair's score the cosine of the two (scaled to the dataset's range). The head of
`model.head: cosine_similarity` (similarity tasks, BERT-style encoders): nothing new to learn from scratch, so a
checkpoint trained this way (all-MiniLM-L6-v2) starts at its own judgement of similarity — untrained, MiniLM's
cosine scores BIOSSES test at Pearson 84.7, where a regression head on the pair's first token learns little from
64 training pairs. Trained with the mean squared error of the cosine against the gold score over the range, as
sentence-transformers' CosineSimilarityLoss does.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from transformers import BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class BertBiEncoderForSimilarity(BertPreTrainedModel):
    """`input_ids` / `attention_mask`: the first sentences; `input_ids_b` / `attention_mask_b`: the second ones.
    `logits`: the cosine times `config.similarity_scale` (the training scores' largest magnitude), one per pair."""

    @classmethod
    def from_config(cls, config, **kwargs):
        """Untrained, as the Auto classes build one (random-init models)."""
        return cls._from_config(config, **kwargs)

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.post_init()

    def _embed(self, input_ids, attention_mask):
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def forward(self, input_ids=None, attention_mask=None, input_ids_b=None, attention_mask_b=None, labels=None, **_):
        a = self._embed(input_ids, attention_mask)
        b = self._embed(input_ids_b, attention_mask_b)
        scale = float(getattr(self.config, "similarity_scale", 1.0))
        with torch.autocast(device_type=a.device.type, enabled=False):  # the score is the prediction: fp32
            cosine = F.cosine_similarity(a.float(), b.float(), dim=-1)
            loss = F.mse_loss(cosine, labels.float() / scale) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=(cosine * scale).unsqueeze(-1))
