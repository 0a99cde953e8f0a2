"""Soft-prompt methods through peft: P-tuning (Liu et al. 2021, prompt encoder MLP), prompt tuning (Lester et
al. 2021, trained input embeddings) and prefix tuning (Li & Liang 2021; P-tuning v2: trained key/value
prefixes in every layer)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from biotune.models.heads import HEADS

from .base import PeftMethod, register


class _SoftPrompt(PeftMethod):
    virtual_tokens = True

    def fits(self, family, head=None) -> bool:

        return head is None or HEADS.get(head).soft_prompts_fit


class PTuningParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_virtual_tokens: int = Field(20, ge=1)
    encoder_hidden_size: int = Field(128, ge=1)
    encoder_type: Literal["MLP", "LSTM"] = "MLP"


@register
class PTuning(_SoftPrompt):
    name = "ptuning"
    default_lr = 1e-3
    search_space = {"training.learning_rate": [1.0e-3, 5.0e-3, 1.0e-2]}
    search_source = "P-tuning v2 (Liu et al. 2022): 5e-3 to 1e-2 with AdamW"
    params_model = PTuningParams

    def peft_config(self, family, head, params, model, total_steps=None):
        from peft import PromptEncoderConfig

        return PromptEncoderConfig(
            num_virtual_tokens=params.num_virtual_tokens,
            encoder_hidden_size=params.encoder_hidden_size,
            encoder_reparameterization_type=params.encoder_type,
            task_type=family.peft_task_type_for(head),
        )


class PromptTuningParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_virtual_tokens: int = Field(20, ge=1)


@register
class PromptTuning(_SoftPrompt):
    name = "prompt_tuning"
    default_lr = 3e-2
    search_space = {"training.learning_rate": [1.0e-2, 3.0e-2, 1.0e-1]}
    search_source = (
        "prompt tuning (Lester et al. 2021) trains at 0.3 with Adafactor; with AdamW biotune's "
        "choice, 3e-2 and a half-decade either side"
    )
    params_model = PromptTuningParams

    def peft_config(self, family, head, params, model, total_steps=None):
        from peft import PromptTuningConfig

        return PromptTuningConfig(
            num_virtual_tokens=params.num_virtual_tokens, task_type=family.peft_task_type_for(head)
        )


class PrefixParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_virtual_tokens: int = Field(20, ge=1)
    prefix_projection: bool = False
    encoder_hidden_size: int = Field(512, ge=1)  # used with prefix_projection


@register
class PrefixTuning(_SoftPrompt):
    name = "prefix"
    families = ("causal", "seq2seq", "glm")  # transformers 5's BERT takes no past key values
    default_lr = 1e-2
    search_space = {"training.learning_rate": [3.0e-3, 1.0e-2, 3.0e-2]}
    search_source = "P-tuning v2 (Liu et al. 2022), prefixes in every layer: 5e-3 to 1e-2 with AdamW"
    params_model = PrefixParams

    def fits(self, family, head=None) -> bool:
        return family.name in self.families

    def peft_config(self, family, head, params, model, total_steps=None):
        from peft import PrefixTuningConfig

        return PrefixTuningConfig(
            num_virtual_tokens=params.num_virtual_tokens,
            prefix_projection=params.prefix_projection,
            encoder_hidden_size=params.encoder_hidden_size,
            task_type=family.peft_task_type_for(head),
        )
