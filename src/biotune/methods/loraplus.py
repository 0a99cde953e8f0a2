"""LoRA+ (Hayou et al. 2024): LoRA whose B matrices learn `lr_ratio` times faster than its A matrices (one
learning rate for both is inefficient at large width); peft's optimizer for it."""

from __future__ import annotations

from pydantic import Field

from .base import register
from .lora import Lora, LoraParams


class LoraPlusParams(LoraParams):
    lr_ratio: float = Field(16.0, ge=1)  # the paper's recommended ratio of B's rate to A's (2^4)
    embedding_lr: float = Field(1e-6, gt=0)  # for adapted embedding layers (peft's default)


@register
class LoraPlus(Lora):
    name = "loraplus"
    params_model = LoraPlusParams

    def optimizer(self, model, params, learning_rate, weight_decay):
        import torch
        from peft.optimizers import create_loraplus_optimizer

        # A (and the rest that trains: a task head's weight) at the run's rate, B (and, as peft groups them, every
        # 1-d trained parameter) at lr_ratio times it; AdamW as the Trainer's own
        return create_loraplus_optimizer(
            model,
            torch.optim.AdamW,
            lr=learning_rate,
            loraplus_lr_ratio=params.lr_ratio,
            loraplus_weight_decay=weight_decay,
            loraplus_lr_embedding=params.embedding_lr,
        )
