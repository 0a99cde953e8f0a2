"""Full fine-tuning: every weight trains."""

from __future__ import annotations

from .base import Method, register


@register
class FullFineTuning(Method):
    trains_base = True
    name = "fft"
    default_lr = 2e-5  # the usual range for full fine-tuning of LLMs and BERT (1e-5 .. 5e-5)
    search_space = {"training.learning_rate": [1.0e-5, 3.0e-5, 1.0e-4]}
    search_source = (
        "BERT (Devlin et al. 2019): 2e-5 to 5e-5; Alpaca (Taori et al. 2023): 2e-5 for LLaMA-7B; "
        "small models reach higher (the range grows at its edge)"
    )

    def apply(self, model, family, head, params, total_steps=None):
        for p in model.parameters():
            p.requires_grad_(True)
        return model
