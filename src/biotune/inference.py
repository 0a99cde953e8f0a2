"""Batched inference for generative models: greedy generation, and option scoring by log-likelihood.

Both sort requests by length so a batch holds similar lengths (less padding), and return results in the
order the requests came in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm


def _length_order(lengths: Sequence[int]) -> list[int]:
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def stop_token_ids(tokenizer) -> list[int]:
    ids = {tokenizer.eos_token_id}
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return sorted(i for i in ids if i is not None)


@torch.inference_mode()
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
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = _length_order([len(e) for e in encoded])
    outputs: list[str] = [""] * len(prompts)
    pad = tokenizer.pad_token_id
    stops = stop_token_ids(tokenizer)
    device = model.device
    with tqdm(total=len(prompts), desc=desc, unit="ex", disable=not progress, leave=False) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):  # left padding: every prompt ends where generation starts
                ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
                mask[row, width - len(encoded[i]) :] = 1
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=stops,
                pad_token_id=pad,
            )
            for row, i in enumerate(idx):
                outputs[i] = tokenizer.decode(out[row, width:], skip_special_tokens=True)
            bar.update(len(idx))
    return outputs


@torch.inference_mode()
def option_logprobs(
    model,
    tokenizer,
    requests: Sequence[tuple[str, Sequence[str]]],
    batch_size: int = 8,
    desc: str = "score options",
    progress: bool = True,
) -> list[list[float]]:
    """For each (prompt, options): the summed log-probability of each option's tokens after the prompt.

    Logits are computed only at the option positions (the LM head never runs over the prompt)."""
    pairs: list[tuple[int, list[int], list[int]]] = []  # (request index, prompt ids, option ids)
    for r, (prompt, options) in enumerate(requests):
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        for option in options:
            pairs.append((r, p_ids, tokenizer(option, add_special_tokens=False)["input_ids"]))
    scores: list[float] = [0.0] * len(pairs)
    order = _length_order([len(p) + len(o) for _, p, o in pairs])
    head = model.get_output_embeddings()
    body = model.base_model if model.base_model is not model else model.model
    device = model.device
    with tqdm(total=len(pairs), desc=desc, unit="opt", disable=not progress, leave=False) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            seqs = [pairs[i][1] + pairs[i][2] for i in idx]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(idx), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, s in enumerate(seqs):  # right padding: positions count from 0 for every row
                ids[row, : len(s)] = torch.tensor(s)
                mask[row, : len(s)] = 1
            hidden = body(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
            rows, positions, targets = [], [], []
            for row, i in enumerate(idx):
                n_prompt, option = len(pairs[i][1]), pairs[i][2]
                for k, tok in enumerate(option):  # the token at n_prompt+k is predicted at n_prompt+k-1
                    rows.append(row)
                    positions.append(n_prompt + k - 1)
                    targets.append(tok)
            logits = head(hidden[torch.tensor(rows), torch.tensor(positions)]).float()
            token_lp = torch.log_softmax(logits, dim=-1)[torch.arange(len(targets)), torch.tensor(targets)]
            sums = torch.zeros(len(idx)).index_add_(0, torch.tensor(rows), token_lp.cpu())
            for row, i in enumerate(idx):
                scores[i] = float(sums[row])
            bar.update(len(idx))
    out: list[list[float]] = [[] for _ in requests]
    for (r, _, _), s in zip(pairs, scores):
        out[r].append(s)
    return out
