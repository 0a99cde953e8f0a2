"""Prompts for generative models: instruction, k demonstrations, the input, and the answer slot.

With a chat template (the tokenizer has one) the prompt is a conversation: the instruction as the system
turn, each shot as a user turn (input) and an assistant turn (answer), then the input as the last user
turn. Without one, a plain "### Instruction / ### Input / ### Answer" layout is used.

A prompt longer than `max_length` tokens (including room for the answer) drops shots first, farthest from
the input first; if it is still too long with no shot, the input itself is cut at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Prompt:
    text: str
    n_shots: int  # shots kept
    n_dropped: int  # shots dropped to fit the context
    input_truncated: bool
    n_tokens: int


def messages(instruction: str, shots: Sequence[tuple[str, str]], user_input: str) -> list[dict]:
    msgs = [{"role": "system", "content": instruction}]
    for shot_input, shot_answer in shots:
        msgs += [{"role": "user", "content": shot_input}, {"role": "assistant", "content": shot_answer}]
    msgs.append({"role": "user", "content": user_input})
    return msgs


def render(tokenizer, msgs: list[dict]) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    parts = [f"### Instruction:\n{msgs[0]['content']}\n"]
    for m in msgs[1:]:
        parts.append(f"### Input:\n{m['content']}\n" if m["role"] == "user" else f"### Answer:\n{m['content']}\n")
    parts.append("### Answer:\n")
    return "\n".join(parts)


class PromptBuilder:
    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def build(
        self,
        instruction: str,
        shots: Sequence[tuple[str, str]],
        user_input: str,
        reserve: int,
    ) -> Prompt:
        """`shots` ordered farthest-first (the last is nearest to the input); `reserve`: tokens for the answer."""
        budget = self.max_length - reserve
        shots = list(shots)
        for n_drop in range(len(shots) + 1):
            text = render(self.tokenizer, messages(instruction, shots[n_drop:], user_input))
            n = self.count(text)
            if n <= budget:
                return Prompt(text, len(shots) - n_drop, n_drop, False, n)
        # no shot left and still too long: cut the input
        overflow = n - budget
        ids = self.tokenizer(user_input, add_special_tokens=False)["input_ids"]
        keep = max(0, len(ids) - overflow - 8)
        while True:
            cut = self.tokenizer.decode(ids[:keep]) + " ..."
            text = render(self.tokenizer, messages(instruction, [], cut))
            n = self.count(text)
            if n <= budget or keep == 0:
                return Prompt(text, 0, len(shots), True, n)
            keep = max(0, keep - max(8, n - budget))
