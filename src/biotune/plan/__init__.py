"""The cost planner: `biotune study FILE --plan` and `biotune run FILE --plan` say, before anything runs, what
each cell needs (peak accelerator memory, FLOPs, time, GPU-hours), whether it fits, and what would.

architecture.py  shapes and parameter counts of the real model (built on the meta device, method applied)
calibration.py   the plan corrected by the runs that finished on this machine
tokens.py        token counts of the data the cell reads, with the run's own formatting
estimate.py      the arithmetic (bytes, FLOPs), pure functions of numbers
planner.py       one experiment's plan, suggestions, a study's plans
gpus.py          the accelerator table (gpus.yaml)
"""

from .gpus import Accelerator, accelerator, gpu_table
from .planner import Plan, plan_cells, plan_experiment

__all__ = ["Accelerator", "Plan", "accelerator", "gpu_table", "plan_cells", "plan_experiment"]
