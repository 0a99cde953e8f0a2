"""The planner's arithmetic: bytes and FLOPs from shapes and token counts. Pure functions of numbers, each
tested against values worked out by hand (tests/test_plan.py).

Memory is torch's peak allocation (what `torch.cuda.max_memory_allocated` reports):
  weights      by the dtype they are kept in: trained weights fp32; frozen ones in the compute dtype (bf16 where
               the hardware has it); QLoRA's 4-bit linear layers at 4 bits plus their quantization constants
  training     gradients (fp32) and AdamW's two moments (fp32) of what trains; under bf16 autocast a full
               fine-tune also holds autocast's bf16 copy of each weight
  activations  what backward keeps per token and layer (norm inputs and outputs, q / k / v, the attention
               output, the MLP's intermediate tensors, dropout masks, LoRA's dropped inputs; eager attention
               also its length x length scores), for the largest micro-batch; with gradient checkpointing one
               hidden state per layer plus one layer recomputed
  logits       at the positions the loss reads (biotune computes the LM head at answer positions only)
  generation   the KV cache of an evaluation batch, and the prefill's transient tensors
FLOPs count 2 per multiply-add: a forward pass is 2 x (weights a token passes through) + the attention's
4 x q_dim x context per layer; backward is 2 x forward when the base trains (gradients of activations and of
weights), 1 x forward when it is frozen (activations only); gradient checkpointing adds one forward.
"""

from __future__ import annotations

from dataclasses import dataclass

from .architecture import Architecture, Stack

LOGIT_BYTES = {2: 10, 4: 12}  # per logit element: the logits in the compute dtype, their fp32 copy, the gradient


def nf4_bytes(n: int, double_quant: bool = True, block: int = 64, block2: int = 256) -> float:
    """Bytes of `n` weights in bitsandbytes' 4-bit format: 4 bits each, plus one absmax per block of 64 weights,
    fp32 (4 bytes) or, double-quantized, 8-bit with one fp32 constant per 256 of them (QLoRA paper, section 3:
    0.5 bits per weight become 0.127)."""
    per_weight = 0.5 + ((1 + 4 / block2) / block if double_quant else 4 / block)
    return n * per_weight


@dataclass(frozen=True)
class Regime:
    """How a run holds and computes its model (decided from the method and the hardware)."""

    compute_bytes: int  # 2 under bf16, else 4
    trains: bool
    trains_base: bool
    quantized: bool
    double_quant: bool = True
    gradient_checkpointing: bool = False
    eager_attention: bool = False  # attention scores materialized (CPU training); GPUs use SDPA
    lora_dropout: float = 0.0  # adapters' dropout: each adapted input is kept once more (dropped copy)
    logits_at_answers: bool = True
    autocast: bool = False  # bf16 autocast (mixed precision)


def weight_bytes(arch: Architecture, r: Regime) -> float:
    """The model's weights as a run keeps them (adapters and soft prompts in fp32)."""
    if not r.trains:
        return arch.total_params * r.compute_bytes
    if r.trains_base:
        return arch.total_params * 4
    base = arch.total_params
    frozen = base * r.compute_bytes
    if r.quantized:
        rest = base - arch.quantizable_params  # embeddings, norms, the head: kept in the compute dtype
        frozen = nf4_bytes(arch.quantizable_params, r.double_quant) + rest * r.compute_bytes
    return frozen + arch.trainable_params * 4


def training_state_bytes(arch: Architecture, r: Regime) -> float:
    """Gradients and AdamW moments of what trains (fp32), and autocast's bf16 weight copies in a full fine-tune."""
    if not r.trains:
        return 0.0
    state = arch.trainable_params * (4 + 8)
    if r.trains_base and r.autocast:
        state += (arch.quantizable_params + arch.head_params) * 2
    return state


def optimizer_bytes(arch: Architecture, r: Regime) -> float:
    return arch.trainable_params * 8 if r.trains else 0.0


def saved_per_token(stack: Stack, arch: Architecture, r: Regime, context: int) -> float:
    """Bytes one layer of `stack` keeps for backward per token, at attention context `context`."""
    h, q, kv, i = stack.hidden, stack.q_dim, stack.kv_dim, stack.intermediate
    elements = 4 * h + q + 2 * kv + 2 * q + (4 * i if stack.glu else 2 * i)  # norms, q/k/v, attention out x2, MLP
    masks = 0.0
    if stack.cross_attention:
        elements += 2 * h + 3 * q  # the cross-attention block: norm in/out, its q, its output x2
    if arch.hidden_dropout:
        masks += (3 if stack.cross_attention else 2) * h  # one byte per element
    if r.lora_dropout and arch.adapter_per_token_params:
        # the dropped copy of each adapted layer's input (shared by adapters that read the same tensor: q/k/v,
        # gate/up), and its mask
        inputs = 2 * h + q + i
        elements += inputs
        masks += inputs
    total = elements * r.compute_bytes + masks
    if r.eager_attention:
        scores = stack.heads * context * (stack.cross_attention + 1)
        dropout = bool(arch.attention_dropout)
        total += scores * r.compute_bytes * (2 if dropout else 1) + (scores if dropout else 0)
    return total


def activation_bytes(arch: Architecture, r: Regime, batch: int, length: int, target: int) -> float:
    """Activations kept for backward by one micro-batch of `batch` sequences: `length` input tokens (decoder-only:
    prompt and answer together) and, for an encoder-decoder, `target` decoder tokens."""
    total = 0.0
    for s in arch.stacks:
        count = target if s.cross_attention else length  # an encoder-decoder's decoder reads the target tokens
        n = batch * count
        per_layer = saved_per_token(s, arch, r, count)
        if s.cross_attention:
            per_layer_src = 2 * s.kv_dim * r.compute_bytes * batch * length  # cross-attention K and V of the source
        else:
            per_layer_src = 0.0
        if r.gradient_checkpointing:
            total += s.layers * (n * s.hidden * r.compute_bytes) + n * per_layer + per_layer_src
        else:
            total += s.layers * (n * per_layer + per_layer_src)
        total += n * 2 * s.hidden * r.compute_bytes  # the final norm's input and output
        if arch.position_bias:  # T5's relative position bias, heads x length x length, with its gradient
            per_seq = s.heads * count**2 * r.compute_bytes
            total += batch * per_seq * (2 if r.trains_base else 1)
    return total


def logits_bytes(arch: Architecture, r: Regime, batch: int, length: int, target: int) -> float:
    """The output head's logits where the loss reads them: answer positions (biotune's LM head runs only there),
    every position otherwise; an encoder's classifier outputs."""
    if arch.encoder is not None and arch.decoder is None:  # encoders: labels per token or per sequence
        return batch * (length if arch.token_head else 1) * max(1, arch.labels) * 12
    if arch.encoder is not None:  # encoder-decoder: the decoder's positions
        positions = target
    elif r.logits_at_answers and not arch.virtual_tokens:
        positions = min(length, batch * target)  # the union of the batch's answer positions
    else:
        positions = length
    return batch * positions * arch.vocab * LOGIT_BYTES[r.compute_bytes]


def kv_cache_bytes(arch: Architecture, r: Regime, batch: int, prompt: int, new: int) -> float:
    """Keys and values an evaluation batch caches while generating (an encoder-decoder: the decoder's own and
    the cross-attention over the source), plus an encoder-decoder's encoder output."""
    d = arch.decoder
    if d is None:
        return 0.0
    if arch.encoder is None:
        return 2 * d.layers * d.kv_dim * r.compute_bytes * batch * (prompt + arch.virtual_tokens + new)
    return (
        2 * d.layers * d.kv_dim * r.compute_bytes * batch * (new + prompt) + batch * prompt * d.hidden * r.compute_bytes
    )


def prefill_bytes(arch: Architecture, r: Regime, batch: int, prompt: int) -> float:
    """What the forward over an evaluation batch's prompts holds at once: one layer's hidden and MLP tensors,
    and the logits of the last position."""
    stack = arch.encoder or arch.decoder
    n = batch * (prompt + arch.virtual_tokens)
    per_token = 4 * stack.hidden + 2 * stack.q_dim + (3 if stack.glu else 2) * stack.intermediate
    logits = (
        batch * arch.vocab * 4
        if arch.decoder is not None
        else batch * (prompt if arch.token_head else 1) * max(1, arch.labels) * 4
    )
    return n * per_token * r.compute_bytes + logits


# -- FLOPs --------------------------------------------------------------------------------------------------------


def _causal_pairs(n: int, before: int, full: bool) -> float:
    """(query, key) pairs the attention of `n` causal tokens computes, with `before` keys ahead of them (a
    prefix, a cache): each sees those and the ones up to itself; `full`: the whole n x (before + n) matrix
    (eager attention computes the masked half too)."""
    return n * (before + n) if full else n * before + n * (n + 1) / 2


def forward_flops(
    arch: Architecture,
    length: int,
    target: int,
    head_positions: int,
    full_attention: bool = False,
    training: bool = False,
) -> float:
    """One forward pass over one sequence: `length` input tokens (decoder-only: prompt + answer), `target`
    decoder tokens for an encoder-decoder; the head at `head_positions` positions. `full_attention`: the kernel
    computes every (query, key) pair (eager), not only the causal ones; `training`: the method's own per-token
    training work is added (DoRA's second matmul under dropout)."""
    flops = 2 * arch.head_params * head_positions + arch.extra_call_flops
    extra = arch.extra_train_token_flops if training else 0.0
    if arch.encoder is not None and arch.decoder is not None:
        e, d = arch.encoder, arch.decoder
        virtual = arch.virtual_tokens if arch.virtual_kind == "input" else 0
        prefix = arch.virtual_tokens if arch.virtual_kind == "prefix" else 0
        src = length + virtual
        flops += src * (2 * e.linear_params + 2 * d.cross_kv_params + 2 * arch.adapter_source_params + extra)
        flops += 4 * e.q_dim * e.layers * src * (src + prefix)
        flops += target * (2 * d.linear_params + 2 * arch.adapter_per_token_params + extra)
        flops += 4 * d.q_dim * d.layers * _causal_pairs(target, prefix, full_attention)
        flops += 4 * d.q_dim * d.layers * target * src  # cross-attention
        return flops
    s = arch.stacks[0]
    n = length + (arch.virtual_tokens if arch.virtual_kind == "input" else 0)
    prefix = arch.virtual_tokens if arch.virtual_kind == "prefix" else 0
    flops += n * (2 * s.linear_params + 2 * arch.adapter_per_token_params + extra)
    pairs = _causal_pairs(n, prefix, full_attention) if s.causal else n * (n + prefix)
    return flops + 4 * s.q_dim * s.layers * pairs


def training_multiplier(r: Regime) -> float:
    """Forward + backward in forwards: 3 when the base trains, 2 when it is frozen; +1 with checkpointing."""
    return (3.0 if r.trains_base else 2.0) + (1.0 if r.gradient_checkpointing else 0.0)


def generation_flops(arch: Architecture, prompt: int, new: int) -> float:
    """Greedy generation of `new` tokens after a `prompt`-token prompt, as biotune generates: with a KV cache
    (each step one token through every layer, attending to everything before it), or, for the soft-prompt models
    biotune decodes without a cache, a full forward pass per step (the head at every position)."""
    if arch.decoder is None:  # an encoder predicts in one forward pass
        return forward_flops(arch, prompt, 0, prompt if arch.token_head else 1)
    if not arch.generation_cached:
        if arch.encoder is not None:
            return sum(forward_flops(arch, prompt, t + 1, t + 1) for t in range(new))
        return sum(forward_flops(arch, prompt + t, 0, prompt + t) for t in range(new))
    d = arch.decoder
    if arch.encoder is not None:  # the encoder once, then the decoder token by token over its cache
        e = arch.encoder
        flops = prompt * (2 * e.linear_params + 2 * d.cross_kv_params + 2 * arch.adapter_source_params)
        flops += 4 * e.q_dim * e.layers * prompt * prompt
        flops += new * (2 * d.linear_params + 2 * arch.adapter_per_token_params + 2 * arch.head_params)
        flops += 4 * d.q_dim * d.layers * (new * (new + 1) / 2 + new * prompt)
        return flops + new * arch.extra_call_flops
    virtual = arch.virtual_tokens
    p = prompt + (virtual if arch.virtual_kind == "input" else 0)  # the soft prompt goes through the layers too
    before = virtual if arch.virtual_kind == "prefix" else 0
    per_token = 2 * (d.linear_params + arch.adapter_per_token_params)
    # the prefill's head: the last position, or every position where biotune's soft-prompt loop runs the base model
    prefill_head = p if arch.virtual_kind == "input" else 1
    flops = p * per_token + 4 * d.q_dim * d.layers * _causal_pairs(p, before, False)
    flops += 2 * arch.head_params * prefill_head
    steps = max(0, new - 1)  # the first new token comes from the prefill's last position
    flops += steps * (per_token + 2 * arch.head_params)
    flops += 4 * d.q_dim * d.layers * steps * (before + p + (steps + 1) / 2)  # step t attends to before + p + t keys
    return flops + (1 + steps) * arch.extra_call_flops


def decode_step_bytes(arch: Architecture, r: Regime, weights: float, batch: int, context: int) -> float:
    """Bytes one decoding step reads: every weight once, and the batch's cached keys and values."""
    return weights + kv_cache_bytes(arch, r, batch, context, 0)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b) if b else 0
