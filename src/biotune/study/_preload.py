"""Imported once by the study's fork server, so each cell's process starts with torch, transformers, peft
and biotune already loaded (about 5 s saved per cell on 2 CPU cores). Importing runs no torch op, so no
thread pool exists yet when a cell is forked."""

import logging

logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)  # see biotune.cli.main

import gc  # noqa: E402

import peft  # noqa: E402, F401
import transformers  # noqa: E402, F401
from transformers import Trainer, TrainingArguments  # noqa: E402, F401  (the lazy imports a cell needs)

import biotune.train  # noqa: E402, F401
import biotune.trainer  # noqa: E402, F401

# what was imported is kept for the process's life: out of the collector's sight, so a cell's collections
# (the Trainer runs one at every train()) do not walk it, and its pages are not written to (copy-on-write) in
# each forked cell
gc.collect()
gc.freeze()
