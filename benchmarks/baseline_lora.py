"""The baseline biotune's LoRA training is compared with: the plain script users write.

HF Trainer + PEFT LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear"), instruction
prompts and answers read from a JSONL file (the same GAD texts biotune trains on), loss on the answer tokens
(prompt labels -100, as TRL's completion-only loss does), batch 8 padded to the longest in the batch, one epoch,
Trainer defaults otherwise (fp32 on CPU, no length grouping) except the learning rate (2e-4, biotune's LoRA
default, so both sides take the same optimisation path) and logging every step (for the loss curve).

    python benchmarks/baseline_lora.py MODEL_DIR data.jsonl OUT_DIR [SEED]
Writes OUT_DIR/result.json: real and padded tokens, train seconds, the loss curve.
"""

import json
import sys
import time
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments


def main(model_dir: str, data_path: str, out_dir: str, seed: int = 0) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    rows = [json.loads(line) for line in Path(data_path).read_text().splitlines()]

    def encode(row):
        prompt = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        answer = tokenizer(row["completion"], add_special_tokens=False)["input_ids"]
        return {
            "input_ids": prompt + answer,
            "attention_mask": [1] * (len(prompt) + len(answer)),
            "labels": [-100] * len(prompt) + answer,
        }

    train = Dataset.from_list([encode(r) for r in rows])
    collator = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100)

    padded = {"tokens": 0}

    def counting_collator(features):
        batch = collator(features)
        padded["tokens"] += batch["input_ids"].numel()
        return batch

    args = TrainingArguments(
        output_dir=out_dir,
        per_device_train_batch_size=8,
        num_train_epochs=1,
        learning_rate=2e-4,
        logging_steps=1,
        seed=seed,
        report_to=[],
        save_strategy="no",
    )
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=counting_collator)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    history = trainer.state.log_history
    result = {
        "real_tokens": int(sum(len(x) for x in train["input_ids"])),
        "padded_tokens": padded["tokens"],
        "answer_tokens": int(sum(sum(1 for v in x if v != -100) for x in train["labels"])),
        "train_seconds": seconds,
        "steps": trainer.state.global_step,
        "loss_curve": [(h["step"], h["loss"]) for h in history if "loss" in h],
        "dtype": str(next(model.parameters()).dtype),
        "threads": torch.get_num_threads(),
    }
    trainer.save_model(str(Path(out_dir) / "adapter"))
    (Path(out_dir) / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:4], seed=int(sys.argv[4]) if len(sys.argv) > 4 else 0)
