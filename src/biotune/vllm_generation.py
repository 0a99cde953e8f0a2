"""Greedy generation through vLLM, for the in-context cells (zero-/few-shot) of decoder-only models on a GPU:
`runtime.generation: vllm` (an optional extra, `pip install 'biotune[vllm]'`; CI and the default set-up never
install it). What changes is only who computes the greedy tokens: the prompts are built and tokenized by biotune
as for transformers' `generate` (the same token ids, `add_special_tokens=False`), the same answer budget and stop
tokens (biotune.inference.stop_token_ids: the model's own end-of-sequence ids from its generation config are
ignored, as they are on the transformers path), and the token ids vLLM returns are decoded by the same HF
tokenizer, so the parsers read the same text. tests/test_cuda.py checks the predictions equal transformers' on a
small set where vLLM and a GPU are present; elsewhere it skips, and asking for vLLM without it is a one-line
error. Trained cells predict with transformers (their adapters live in the trained model); option scoring
(`eval.scoring: likelihood`) is transformers' too.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from .errors import BiotuneError


def available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def check_usable(device, family: str, scoring: str) -> None:
    """The one-line error for `runtime.generation: vllm` where it cannot run, naming the fix."""
    where = "runtime.generation: vllm"
    if not available():
        raise BiotuneError(
            f"{where}: vLLM is not installed here (pip install 'biotune[vllm]' on a CUDA machine), "
            "or use runtime.generation: hf"
        )
    if device.type != "cuda":
        raise BiotuneError(
            f"{where}: vLLM generates on CUDA GPUs; this run's device is {device} (use runtime.generation: hf)"
        )
    if family != "causal":
        raise BiotuneError(
            f"{where}: only decoder-only (causal) models are generated through vLLM here; this "
            f"model's family is {family} (use runtime.generation: hf)"
        )
    if scoring != "generate":
        raise BiotuneError(
            f"{where}: vLLM generates answers; eval.scoring: {scoring} scores options with "
            "transformers (use runtime.generation: hf)"
        )


class VllmModel:
    """A causal model held by a vLLM engine, standing in for the transformers model where biotune generates:
    `config` (the model's transformers config, for the prompt budget), `device`, and `greedy`."""

    generation = "vllm"

    def __init__(
        self,
        path: str,
        dtype,
        seed: int,
        max_model_len: int | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        gpu_memory_utilization: float = 0.85,
    ):
        import torch
        from transformers import AutoConfig

        self.path = path
        self.config = AutoConfig.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
        self.device = torch.device("cuda")
        self.dtype = dtype
        names = {torch.bfloat16: "bfloat16", torch.float16: "float16", torch.float32: "float32"}
        import vllm
        from vllm import LLM

        self.version = vllm.__version__
        # prompts go in as token ids and answers come back as token ids (biotune's tokenizer does both ends);
        # generation_config "vllm": vLLM's neutral defaults, not the model's sampling settings
        self.llm = LLM(
            model=path,
            skip_tokenizer_init=True,
            revision=revision,
            dtype=names.get(dtype, "auto"),
            seed=seed,
            max_model_len=max_model_len,
            trust_remote_code=trust_remote_code,
            gpu_memory_utilization=gpu_memory_utilization,
            generation_config="vllm",
        )

    def greedy(
        self, encoded: Sequence[Sequence[int]], max_new_tokens: int, stops: Sequence[int], progress: bool = True
    ) -> list[list[int]]:
        """Greedy new token ids for each prompt (token ids): up to `max_new_tokens` or the first of `stops`
        (included, as transformers' `generate` returns it); without stops exactly `max_new_tokens`."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(
            temperature=0.0,
            max_tokens=max_new_tokens,
            stop_token_ids=list(stops) or None,
            ignore_eos=True,  # only `stops` end an answer, as on the transformers path
            skip_special_tokens=False,
            detokenize=False,
        )
        prompts = [TokensPrompt(prompt_token_ids=list(e)) for e in encoded]
        outputs = self.llm.generate(prompts, params, use_tqdm=progress)
        return [list(o.outputs[0].token_ids) for o in outputs]

    def weight_bytes(self) -> int:
        """Bytes of the weights as vLLM holds them: the model's parameters (counted on the meta device, tied
        ones once) in the engine's dtype."""
        import torch
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            shape = AutoModelForCausalLM.from_config(self.config)
        return sum(p.numel() for p in shape.parameters()) * self.dtype.itemsize
