"""Checkpoints that carry their config: save, and load into a ready estimator.

A checkpoint is ``{'kind', 'config', 'state_dict', 'meta'}`` of plain tensors, numbers, strings,
lists and dicts, written with ``torch.save`` and read with ``torch.load(weights_only=True)`` (never a
full unpickle: a checkpoint file may come from anywhere). ``kind`` selects the builder that turns
the config and weights into an estimator; builders are registered by name, so the full image
network registers its kind ('dahyf') without this module importing it.
"""
from __future__ import annotations

import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch

from ..errors import DaHyFUserError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
#: The shipped default engine (the landmark variant).
DEFAULT_CHECKPOINT = ASSETS / "default_engine.pt"

#: kind → builder, either a callable or a lazy "module:function" string.
#: A builder is ``builder(config: dict, state_dict: dict, meta: dict, device: str) -> estimator``.
_BUILDERS: dict[str, str | Callable] = {
    "landmark": "dahyf.net.landmark:build_estimator",
    "dahyf": "dahyf.net.dahyf_net:build_estimator",
}


class CheckpointError(DaHyFUserError, RuntimeError):
    """A checkpoint file that cannot be used; the message says what to do."""


def register_kind(kind: str, builder: str | Callable) -> None:
    """Register the builder of a checkpoint kind (a callable or a ``"module:function"`` string)."""
    _BUILDERS[kind] = builder


def known_kinds() -> tuple[str, ...]:
    return tuple(sorted(_BUILDERS))


def _resolve(kind: str) -> Callable:
    try:
        builder = _BUILDERS[kind]
    except KeyError:
        raise CheckpointError(f"unknown checkpoint kind {kind!r}; known kinds: {', '.join(known_kinds())}. "
                              "Is the checkpoint from a newer dahyf?") from None
    if isinstance(builder, str):
        module, func = builder.split(":")
        builder = getattr(importlib.import_module(module), func)
        _BUILDERS[kind] = builder
    return builder


def save_checkpoint(path: str | Path, kind: str, config: dict, state_dict: dict, meta: dict | None = None) -> Path:
    """Write a checkpoint atomically (a temporary file renamed into place).

    Parameters
    ----------
    path : destination (.pt).
    kind : builder name (e.g. 'landmark').
    config : plain dict that rebuilds the network.
    state_dict : the network's weights.
    meta : plain dict of provenance (seed, steps, figures, ...).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # only plain data may go in: the file is read back with weights_only=True
        config, meta = json.loads(json.dumps(dict(config))), json.loads(json.dumps(dict(meta or {})))
    except TypeError as exc:
        raise TypeError(f"checkpoint config and meta must be plain JSON-like data: {exc}") from None
    payload = {"kind": kind, "config": config,
               "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()},
               "meta": meta}
    from ..capture.take import user_file_mode

    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, user_file_mode())  # mkstemp makes 0600 files; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file safely (``weights_only=True``) and check its layout."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}. Pass an existing .pt file, or omit it to use the "
                              f"bundled default engine ({DEFAULT_CHECKPOINT.name}).")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise CheckpointError(f"{path} is not a readable DaHyF checkpoint ({type(exc).__name__}: {exc}). "
                              "Re-download or retrain it (`dahyf train landmark --out PATH`).") from exc
    if not isinstance(payload, dict) or not {"kind", "config", "state_dict"} <= set(payload):
        raise CheckpointError(f"{path} is not a DaHyF checkpoint (expected keys kind, config, state_dict, meta).")
    payload.setdefault("meta", {})
    return payload


def load_checkpoint(path: str | Path | None = None, device: str = "cpu"):
    """Load a checkpoint into a ready estimator (``estimator.predict(...)``).

    Parameters
    ----------
    path : the .pt file; None → the bundled default engine ``engine/assets/default_engine.pt``.
    device : 'cpu', 'cuda', ...

    Raises
    ------
    CheckpointError
        Missing, unreadable or unknown-kind checkpoints, with what to do.
    """
    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    payload = read_checkpoint(path)
    builder = _resolve(payload["kind"])
    return builder(payload["config"], payload["state_dict"], payload["meta"], device)
