"""`dahyf train ...`: training sub-commands.

Each entry of ``SUBCOMMANDS`` names a module and its ``add_*`` / ``run_*`` functions, so another
trainer (the full image network) adds one line here.
"""
from __future__ import annotations

import importlib
import sys

#: name → (module, add_arguments function, run function, help)
SUBCOMMANDS: dict[str, tuple[str, str, str, str]] = {
    "landmark": ("dahyf.train.landmark_trainer", "add_train_arguments", "run_train",
                 "train the default engine (landmark variant) on synthetic samples (CPU, minutes)"),
    "landmark-eval": ("dahyf.train.landmark_trainer", "add_eval_arguments", "run_eval",
                      "synthetic held-out figures of a landmark checkpoint (benchmarks/landmark_engine.md)"),
    "net": ("dahyf.train.net_command", "add_arguments", "run",
            "train the DaHyF image network (paper recipe / Table 4 rows; torchrun for multi-GPU)"),
}


#: Why a trainer cannot run here: training needs torch, which the Python 3.13 tier lacks.
NEEDS_TORCH = ("dahyf train {name} needs torch, which is not installed here: `pip install torch==2.13.0` "
               "on Python 3.11 (PyTorch publishes no CPU wheel for Python 3.13). Capture needs no torch.")


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="train_command", metavar="WHAT")
    for name, (module, add_fn, run_fn, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_train_module=module, _train_run=run_fn)
        try:
            trainer = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] != "torch":
                raise
            p.set_defaults(_train_missing=NEEDS_TORCH.format(name=name))
            continue  # the other dahyf commands (capture, live ...) work without torch
        getattr(trainer, add_fn)(p)


def run(args) -> int:
    if not getattr(args, "train_command", None):
        print("usage: dahyf train {" + ",".join(SUBCOMMANDS) + "} ...  (see dahyf train -h)")
        return 2
    if getattr(args, "_train_missing", None):
        print(args._train_missing, file=sys.stderr)
        return 2
    return int(getattr(importlib.import_module(args._train_module), args._train_run)(args) or 0)
