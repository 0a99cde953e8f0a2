"""In-context learning as methods, so a study can put them beside fine-tuning: nothing is trained."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .base import Method, register


@register
class ZeroShot(Method):
    name = "zero_shot"
    trains = False
    deterministic = True

    def fits(self, family, head=None) -> bool:
        return family.generative  # answers written as text: the generative families

    def apply(self, model, family, head, params, total_steps=None):
        return model


class FewShotParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shots: int = Field(3, ge=1)
    selection: Literal["random", "knn"] = "random"


@register
class FewShot(ZeroShot):
    name = "few_shot"
    deterministic = False  # the seed draws the shots
    params_model = FewShotParams
