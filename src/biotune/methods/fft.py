"""Full fine-tuning: every weight trains."""

from __future__ import annotations

from .base import Method, register


@register
class FullFineTuning(Method):
    trains_base = True
    name = "fft"
    default_lr = 2e-5  # the usual range for full fine-tuning of LLMs and BERT (1e-5 .. 5e-5)

    def apply(self, model, family, head, params, total_steps=None):
        for p in model.parameters():
            p.requires_grad_(True)
        return model
