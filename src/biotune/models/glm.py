"""GLM models through transformers' native classes (GlmForCausalLM, Glm4ForCausalLM: e.g.
THUDM/glm-4-9b-chat-hf). The older ChatGLM checkpoints (THUDM/chatglm3-6b, glm-4-9b-chat without -hf) ship
their own modelling code: they need `model.trust_remote_code: true`, which stays off unless set."""

from __future__ import annotations

from .base import ModelFamily, register


@register
class GlmFamily(ModelFamily):
    name = "glm"
    peft_task_type = "CAUSAL_LM"

    def claims(self, config):
        return config.model_type in ("glm", "glm4", "chatglm")

    @property
    def config_class(self):
        from transformers import GlmConfig

        return GlmConfig

    def random_config_class(self, fields: dict):
        from transformers import Glm4Config, GlmConfig

        return Glm4Config if fields.pop("variant", "glm") == "glm4" else GlmConfig  # random_init.variant

    def auto_class(self, head: str):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def explain_load_error(self, mcfg, e: Exception) -> str:
        if "trust_remote_code" in str(e) and not mcfg.trust_remote_code:
            return (
                f"model {mcfg.path!r} ships its own modelling code (older ChatGLM checkpoint); set "
                "`model.trust_remote_code: true` in the experiment file to run it, or use a checkpoint with "
                "native transformers support such as THUDM/glm-4-9b-chat-hf"
            )
        return super().explain_load_error(mcfg, e)
