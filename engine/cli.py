"""`dahyf` command line: a thin front over the library API.

Each sub-command lives in its own module that provides ``add_arguments(parser)`` and
``run(args) -> int``; only the sub-commands whose module exists are listed.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from .errors import DaHyFUserError

#: Environment variable that makes an internal error show its traceback (like --debug).
DEBUG_ENV = "DAHYF_DEBUG"

#: name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "capture": ("dahyf.capture.commands", "capture hand motion from a video into a take (.npz)"),
    "live": ("dahyf.capture.live_commands", "live capture from a camera, stream or video file in real time"),
    "train": ("dahyf.train.commands", "train a DaHyF network or the default landmark engine"),
    "predict": ("dahyf.train.predict", "run an image checkpoint over a FreiHAND / HO3D evaluation split into pred.json"),
    "eval": ("dahyf.eval.commands", "evaluate predictions with the official FreiHAND / HO3D metrics"),
    "bench": ("dahyf.eval.bench", "measure throughput and memory, write BENCHMARKS figures"),
    "demo": ("dahyf.demo", "the main job: capture the bundled sample video (into a .blend when Blender's bpy is installed)"),
}


def available_commands() -> dict[str, tuple[str, str]]:
    """The sub-commands whose module is present in this install."""
    out = {}
    for name, (module, help_) in COMMANDS.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            out[name] = (module, help_)
    return out


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="dahyf", description="DaHyF hand capture engine.")
    parser.add_argument("--version", action="version", version=f"dahyf {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the Python traceback of an internal error (or set {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in available_commands().items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ImportError as exc:   # e.g. `train` where torch is not installed: capture still works
            p = argparse.ArgumentParser(prog=f"{parser.prog} {name}", description=help_)
            p.set_defaults(_module=module, _missing=exc.name or str(exc))
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            sub.choices[name] = p    # replaces the half-built parser
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; exit codes: 0 done, 1 an error the user can fix, 2 bad usage, 3 an internal error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    if getattr(args, "_missing", None):
        print(f"dahyf {args.command}: needs the Python package {args._missing!r}, which is not installed here "
              f"(capture does not need it; training and the image network need PyTorch).", file=sys.stderr)
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except DaHyFUserError as exc:  # a sub-command that let one through: its message is meant for the user
        print(f"dahyf {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        detail = " ".join(str(exc).split())[:300]
        print(f"dahyf {args.command}: internal error: {type(exc).__name__}{': ' + detail if detail else ''}\n"
              f"This is a bug in dahyf, not something you did. Run again with `dahyf --debug {args.command} ...` "
              f"(or {DEBUG_ENV}=1) to see the traceback, and report it.", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
