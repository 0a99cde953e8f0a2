"""Batched inference for generative models: greedy generation, and option scoring by log-likelihood.

Both sort requests by length so a batch holds similar lengths (less padding), and return results in the
order the requests came in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from .progress import Progress


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> (ids, attention mask), padded to the longest. Right padding (default) keeps positions
    counting from 0 in every row; left padding makes every row end at the same place (for generation)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        span = slice(width - len(s), width) if left else slice(0, len(s))
        ids[row, span] = torch.tensor(s, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


def length_order(lengths: Sequence[int]) -> list[int]:
    """The order biotune batches inputs in (longest first, ties in their order), so that a batch pads little; the
    planner batches its estimate of generation the same way (biotune.plan.planner)."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def stop_token_ids(tokenizer) -> list[int]:
    ids = {tokenizer.eos_token_id}
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return sorted(i for i in ids if i is not None)


class Answer(NamedTuple):
    """A generated answer: its text, and whether it ran to the token cap without an end token (then it may be cut
    in the middle of an item: biotune.tasks parses what is complete)."""

    text: str
    at_cap: bool


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 8,
    desc: str = "generate",
    progress: bool = True,
) -> list[str]:
    """Greedy continuation of each prompt, up to `max_new_tokens` or an end-of-turn token."""
    return [a.text for a in generate_answers(model, tokenizer, prompts, max_new_tokens, batch_size, desc, progress)]


@torch.inference_mode()
def generate_answers(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 8,
    desc: str = "generate",
    progress: bool = True,
) -> list[Answer]:
    """`generate`, each answer with whether it hit the cap (no stop token among its new tokens)."""
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = length_order([len(e) for e in encoded])
    pad = tokenizer.pad_token_id
    stops = stop_token_ids(tokenizer)

    def answer(ids: list[int]) -> Answer:
        return Answer(tokenizer.decode(ids, skip_special_tokens=True), not any(t in stops for t in ids))

    if getattr(model, "generation", None) == "vllm":  # biotune.vllm_generation: the engine batches by itself
        return [answer(n) for n in model.greedy(encoded, max_new_tokens, stops, progress=progress)]
    outputs: list[Answer] = [Answer("", False)] * len(prompts)
    device = model.device
    with Progress(len(prompts), desc, "ex", progress) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            # left padding: every prompt ends where generation starts
            ids, mask = pad_batch([encoded[i] for i in idx], pad, left=True)
            ids, mask = ids.to(device), mask.to(device)
            new = decode(model, ids, mask, [len(encoded[i]) for i in idx], max_new_tokens, stops, pad)
            for row, i in enumerate(idx):
                outputs[i] = answer(new[row].tolist())
            bar.update(len(idx))
    return outputs


def decode(model, ids, mask, lengths: Sequence[int], max_new_tokens: int, stops: list[int], pad: int):
    """Greedy new tokens for a left-padded batch (`lengths`: each row's prompt length), by the decoding that fits
    the model: the library's cached `generate`, biotune's cached loop for decoder-only soft-prompt models, or full
    forward passes one prompt at a time for the other soft-prompt models. Without stop tokens, exactly
    `max_new_tokens` (what the cost planner's check counts)."""
    width = ids.shape[1]
    decoder_only = not model.config.is_encoder_decoder  # encoder-decoder outputs hold only the answer
    if _has_virtual_tokens(model) and decoder_only:  # batched, cached, positions as in training
        return _greedy_virtual_tokens(model, ids, mask, max_new_tokens, stops, pad)
    if _is_prompt_learning(model):  # one prompt at a time: no padding between soft prompt and input
        return [
            _greedy_without_cache(
                model, ids[r : r + 1, width - n :], mask[r : r + 1, width - n :], max_new_tokens, stops, pad
            )[0]
            for r, n in enumerate(lengths)
        ]
    limits = {"min_new_tokens": max_new_tokens} if not stops else {}
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=stops or None,
        pad_token_id=pad,
        **limits,
    )
    return out[:, width:] if decoder_only else out


def _has_virtual_tokens(model) -> bool:
    """P-tuning and prompt tuning: a learned soft prompt in front of the input embeddings (prefix tuning is not:
    its prompt lives in every layer's keys and values)."""
    config = getattr(model, "active_peft_config", None)
    if config is None or getattr(model, "_adapters_disabled", False):  # inside peft's disable_adapter()
        return False
    return str(config.peft_type).rsplit(".", 1)[-1] in ("P_TUNING", "PROMPT_TUNING")


@torch.inference_mode()
def _greedy_virtual_tokens(model, ids, mask, max_new_tokens: int, stops: list[int], pad: int) -> torch.Tensor:
    """Greedy decoding with a KV cache for decoder-only P-tuning / prompt-tuning models, a left-padded batch at
    a time. It builds what peft's forward builds ([soft prompt][input] as input embeddings, the mask extended
    over the soft prompt) and puts the padding in front of the soft prompt, with position ids counted from the
    first real position, so every row sees exactly the positions of training (soft prompt at 0). Each step then
    feeds one token through the cache. Equal to `_greedy_without_cache` (tested), at the cost of one pass per
    token instead of one pass over the whole sequence per token."""
    batch, width = ids.shape
    base = model.get_base_model()
    embeds = model.word_embeddings(ids)
    prompts = model.get_prompt(batch_size=batch).to(embeds.dtype)
    n_virtual = prompts.shape[1]
    real = mask.sum(dim=1)
    # left padding moves in front of the soft prompt: [pad][soft prompt][input]
    inputs = torch.zeros(batch, n_virtual + width, embeds.shape[-1], dtype=embeds.dtype, device=embeds.device)
    full_mask = torch.zeros(batch, n_virtual + width, dtype=mask.dtype, device=mask.device)
    for r in range(batch):
        start = width - int(real[r])
        inputs[r, start : start + n_virtual] = prompts[r]
        inputs[r, start + n_virtual :] = embeds[r, start:]
        full_mask[r, start:] = 1
    positions = (full_mask.cumsum(dim=1) - 1).clamp(min=0)
    stop = torch.tensor(stops, device=ids.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=ids.device)
    out = base(inputs_embeds=inputs, attention_mask=full_mask, position_ids=positions, use_cache=True)
    cache, next_pos, new = out.past_key_values, positions[:, -1:] + 1, []
    logits = out.logits[:, -1]
    for step in range(max_new_tokens):
        token = torch.where(finished, torch.full_like(finished, pad, dtype=torch.long), logits.argmax(-1))
        new.append(token)
        finished |= torch.isin(token, stop)
        if finished.all() or step == max_new_tokens - 1:
            break
        full_mask = torch.cat([full_mask, torch.ones_like(full_mask[:, :1])], dim=1)
        out = base(
            input_ids=token[:, None],
            attention_mask=full_mask,
            position_ids=next_pos,
            past_key_values=cache,
            use_cache=True,
        )
        cache, next_pos, logits = out.past_key_values, next_pos + 1, out.logits[:, -1]
    return torch.stack(new, dim=1)


def _greedy_without_cache(model, ids, mask, max_new_tokens: int, stops: list[int], pad: int) -> torch.Tensor:
    """Greedy decoding by full forward passes, for soft-prompt models (P-tuning, prompt tuning, prefix tuning).
    With peft 0.21 and transformers 5, `generate` on these models does not decode what the trained model
    predicts: on a prefix-tuned model it drops the learned prefix (the model's own cache wins over peft's
    past_key_values), and with virtual tokens its cached steps drift from the full forward pass after a token
    or two. Recomputing the whole sequence each step is slower, but it is exactly the model that was trained.
    Called with one unpadded prompt: left padding would sit between the soft prompt and the input and move
    them apart (the positions a soft prompt is seen from are not those of training)."""
    enc_dec = model.config.is_encoder_decoder
    batch = ids.shape[0]
    stop = torch.tensor(stops, device=ids.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=ids.device)
    start = getattr(model.config, "decoder_start_token_id", None)
    dec = torch.full((batch, 1), pad if start is None else start, dtype=torch.long, device=ids.device)
    new = []
    for _ in range(max_new_tokens):
        if enc_dec:
            logits = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits[:, -1]
        else:
            logits = model(input_ids=ids, attention_mask=mask).logits[:, -1]
        token = torch.where(finished, torch.full_like(finished, pad, dtype=torch.long), logits.argmax(-1))
        new.append(token)
        finished |= torch.isin(token, stop)
        if enc_dec:
            dec = torch.cat([dec, token[:, None]], dim=1)
        else:
            ids = torch.cat([ids, token[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones_like(token[:, None])], dim=1)
        if finished.all():
            break
    return torch.stack(new, dim=1)


@torch.inference_mode()
def option_logprobs(
    model,
    tokenizer,
    requests: Sequence[tuple[str, Sequence[str]]],
    batch_size: int = 8,
    desc: str = "score options",
    progress: bool = True,
) -> list[list[float]]:
    """For each (prompt, options): the summed log-probability of each option's tokens after the prompt."""
    pairs: list[tuple[int, list[int], list[int]]] = []  # (request index, prompt ids, option ids)
    for r, (prompt, options) in enumerate(requests):
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        for option in options:
            pairs.append((r, p_ids, tokenizer(option, add_special_tokens=False)["input_ids"]))
    scores: list[float] = [0.0] * len(pairs)
    if not model.config.is_encoder_decoder and not _is_prompt_learning(model):
        _shared_decoder_scores(model, tokenizer.pad_token_id, pairs, scores, batch_size, desc, progress)
    else:
        order = length_order([len(p) + len(o) for _, p, o in pairs])
        score_batch = _seq2seq_batch if model.config.is_encoder_decoder else _decoder_batch
        with Progress(len(pairs), desc, "opt", progress) as bar:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = [(pairs[i][1], pairs[i][2]) for i in idx]
                for i, s in zip(idx, score_batch(model, tokenizer.pad_token_id, batch)):
                    scores[i] = s
                bar.update(len(idx))
    out: list[list[float]] = [[] for _ in requests]
    for (r, _, _), s in zip(pairs, scores):
        out[r].append(s)
    return out


def _shared_decoder_scores(
    model, pad_id: int, pairs, scores: list[float], batch_size: int, desc: str, progress: bool
) -> None:
    """Decoder-only option scoring that runs each distinct input once. Scoring option o after prompt p needs
    the hidden states of p + o[:-1] (the last option token is only predicted, never read), so options that
    differ in their last token only (every single-token option: yes / no / maybe) share one pass over the
    prompt, and the LM head runs only at the positions that predict an option token."""
    inputs: dict[tuple[int, ...], int] = {}
    unique: list[list[int]] = []
    users: list[list[tuple[int, int, list[int]]]] = []  # per unique input: (pair, prompt length, option ids)
    for i, (_, p, o) in enumerate(pairs):
        if not o:
            continue  # an empty option has log-probability 0
        seq = p + o[:-1]
        j = inputs.setdefault(tuple(seq), len(unique))
        if j == len(unique):
            unique.append(seq)
            users.append([])
        users[j].append((i, len(p), o))
    order = length_order([len(s) for s in unique])
    body = model.get_decoder() if hasattr(model, "get_decoder") else model.base_model
    head = model.get_output_embeddings()
    with Progress(len(pairs), desc, "opt", progress) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = pad_batch([unique[j] for j in idx], pad_id)
            hidden = body(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).last_hidden_state
            rows, positions, targets, owners = [], [], [], []
            for row, j in enumerate(idx):
                for pair, p_len, o in users[j]:
                    for k, tok in enumerate(o):  # option token k is predicted at position p_len + k - 1
                        rows.append(row)
                        positions.append(p_len + k - 1)
                        targets.append(tok)
                        owners.append(pair)
            picked = head(hidden[torch.tensor(rows), torch.tensor(positions)])
            token_lp = torch.log_softmax(picked.float(), dim=-1)[torch.arange(len(targets)), torch.tensor(targets)]
            for pair, lp in zip(owners, token_lp.tolist()):
                scores[pair] += lp
            bar.update(sum(len(users[j]) for j in idx))


def _sum_logprobs(logits: torch.Tensor, targets: list[int], rows: list[int], n_rows: int) -> list[float]:
    token_lp = torch.log_softmax(logits.float(), dim=-1)[torch.arange(len(targets)), torch.tensor(targets)]
    return torch.zeros(n_rows).index_add_(0, torch.tensor(rows), token_lp.cpu()).tolist()


def _is_prompt_learning(model) -> bool:
    config = getattr(model, "active_peft_config", None)
    return bool(config is not None and config.is_prompt_learning)


def _decoder_batch(model, pad_id: int, batch: list[tuple[list[int], list[int]]]) -> list[float]:
    ids, mask = pad_batch([p + o for p, o in batch], pad_id)
    width = ids.shape[1]
    ids, mask = ids.to(model.device), mask.to(model.device)
    rows, positions, targets = [], [], []
    for row, (p, o) in enumerate(batch):
        for k, tok in enumerate(o):  # the token at len(p)+k is predicted at position len(p)+k-1
            rows.append(row)
            positions.append(len(p) + k - 1)
            targets.append(tok)
    # soft-prompt models (the others go through _shared_decoder_scores): run the whole peft model, skip the
    # virtual tokens' positions
    logits = model(input_ids=ids, attention_mask=mask).logits
    logits = logits[:, logits.shape[1] - width :]
    picked = logits[torch.tensor(rows), torch.tensor(positions)]
    return _sum_logprobs(picked, targets, rows, len(batch))


def _seq2seq_batch(model, pad_id: int, batch: list[tuple[list[int], list[int]]]) -> list[float]:
    ids, mask = pad_batch([p for p, _ in batch], pad_id)
    labels, _ = pad_batch([o for _, o in batch], -100)
    logits = model(
        input_ids=ids.to(model.device), attention_mask=mask.to(model.device), labels=labels.to(model.device)
    ).logits
    rows = [row for row, (_, o) in enumerate(batch) for _ in o]
    positions = [k for _, o in batch for k in range(len(o))]
    targets = [t for _, o in batch for t in o]
    return _sum_logprobs(logits[torch.tensor(rows), torch.tensor(positions)], targets, rows, len(batch))
