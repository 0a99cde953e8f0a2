"""LoRA initialised from the pretrained weights instead of from noise, through peft: PiSSA (Meng et al. 2024: A
and B from the principal singular vectors of each weight, the base keeps the residual) and OLoRA (Büyükakyüz
2024: from a QR decomposition). Both change the frozen base while training, so the saved adapter is converted at
the end into a plain LoRA adapter (rank 2r) on the unchanged base model: what `final/`, `biotune export` and
any peft user load."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field

from .base import register
from .lora import Lora, LoraParams, lora_config

INITIAL = "biotune_initial_adapter"  # attribute of the peft model: the adapter's weights right after the init


class PissaParams(LoraParams):
    dropout: float = Field(0.0, ge=0, lt=1)  # the PiSSA paper trains without adapter dropout
    # subspace iterations of a fast randomized SVD (peft's pissa_niter_N; the paper's 4-16 take seconds on an 8B
    # model); None: the exact SVD
    svd_iterations: int | None = Field(None, ge=1)


class OloraParams(LoraParams):
    pass


class _MutatedInit(Lora):
    """LoRA whose init moves part of each base weight into the adapter."""

    def init_lora_weights(self, params) -> str:
        raise NotImplementedError

    def peft_config(self, family, head, params, model, total_steps=None):
        return lora_config(family, head, params, init_lora_weights=self.init_lora_weights(params))

    def apply(self, model, family, head, params, total_steps=None):
        from peft.utils import get_peft_model_state_dict

        model = super().apply(model, family, head, params, total_steps)
        # kept to convert the trained adapter at the end (a resumed run recomputes the same init: the SVD and the
        # QR of the same weights; the randomized SVD under the run's seed)
        setattr(model, INITIAL, {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()})
        return model

    def finish(self, model, params, folder):

        from safetensors.torch import load_file, save_file

        folder = Path(folder)
        trained = load_file(folder / "adapter_model.safetensors")
        with tempfile.TemporaryDirectory() as tmp:
            initial = Path(tmp) / "initial"
            initial.mkdir()
            save_file(
                {k: v.contiguous() for k, v in getattr(model, INITIAL).items()}, initial / "adapter_model.safetensors"
            )
            # peft writes the initial adapter's config (as plain LoRA) itself, loads it beside the trained one and
            # saves [A; A0], [B, -B0] (rank 2r, the same scaling) as the adapter
            model.save_pretrained(str(folder), path_initial_model_for_weight_conversion=str(initial))
        converted = load_file(folder / "adapter_model.safetensors")
        # peft's conversion keeps the LoRA matrices only: what else trains (a task head) goes back in as trained
        rest = {k: v for k, v in trained.items() if "lora_" not in k and k not in converted}
        if rest:
            save_file({**converted, **rest}, folder / "adapter_model.safetensors")


@register
class Pissa(_MutatedInit):
    name = "pissa"
    params_model = PissaParams

    def init_lora_weights(self, params):
        return "pissa" if params.svd_iterations is None else f"pissa_niter_{params.svd_iterations}"


@register
class Olora(_MutatedInit):
    name = "olora"
    params_model = OloraParams

    def init_lora_weights(self, params):
        return "olora"
