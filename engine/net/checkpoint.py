"""Checkpoints that carry their config: one ``.npz`` file, read without pickle and without torch.

Layout: one array per weight, named as the network's state dict, plus ``__dahyf__``: the UTF-8
bytes (uint8) of a JSON header ``{"format": "dahyf-checkpoint", "version": 1, "kind", "config",
"meta"}``. It is read with ``numpy.load(allow_pickle=False)``: object arrays are refused, the
header is plain JSON, member sizes are checked before anything is decompressed, and the config and
meta are checked by the kind's builder (typed fields, whitelisted options, no hand-model paths).
``kind`` selects the builder that turns the config and weights into an estimator ('landmark':
numpy at capture time; 'dahyf': the torch image network).

Checkpoints written by earlier versions with ``torch.save`` (``.pt``) are still read, with
``torch.load(weights_only=True)``, when torch is installed; ``python -m dahyf.net.checkpoint OLD.pt
NEW.npz`` converts one (the weights bit for bit).
"""
from __future__ import annotations

import argparse
import importlib
import json
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..assets import DEFAULT_CHECKPOINT
from ..errors import DaHyFUserError
from ..fileio import atomic_write

#: kind → builder, a lazy "module:function" string.
#: A builder is ``builder(config: dict, weights: dict[str, np.ndarray], meta: dict, device: str) -> estimator``
#: and raises ValueError (with the reason) for a config, weights or meta it cannot use.
_BUILDERS: dict[str, str | Callable] = {
    "landmark": "dahyf.net.landmark:build_estimator",
    "dahyf": "dahyf.net.dahyf_net:build_estimator",
}
#: Member holding the JSON header.
HEADER = "__dahyf__"
FORMAT = "dahyf-checkpoint"
VERSION = 1
#: Weight dtypes a checkpoint may hold.
DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
#: Largest total uncompressed size of a checkpoint, bytes (HRNet-W64 with its head is ~0.3 GB).
MAX_BYTES = 2 * 2 ** 30
#: Largest header, bytes.
MAX_HEADER_BYTES = 2 ** 20


class CheckpointError(DaHyFUserError, RuntimeError):
    """A checkpoint file that cannot be used; the message says what to do."""


def known_kinds() -> tuple[str, ...]:
    return tuple(sorted(_BUILDERS))


def _resolve(kind: str) -> Callable:
    try:
        builder = _BUILDERS[kind]
    except (KeyError, TypeError):
        raise CheckpointError(f"unknown checkpoint kind {kind!r}; known kinds: {', '.join(known_kinds())}. "
                              "Is the checkpoint from a newer dahyf?") from None
    if isinstance(builder, str):
        module, func = builder.split(":")
        builder = getattr(importlib.import_module(module), func)
        _BUILDERS[kind] = builder
    return builder


def _plain(obj, what: str):
    """``obj`` as plain JSON data (finite numbers only), or TypeError."""
    try:
        return json.loads(json.dumps(obj, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"checkpoint {what} must be plain JSON-like data with finite numbers: {exc}") from None


def save_checkpoint(path: str | Path, kind: str, config: dict, state_dict: dict, meta: dict | None = None) -> Path:
    """Write a checkpoint atomically (a temporary file renamed into place).

    Parameters
    ----------
    path : destination (``.npz`` by convention; the format does not depend on the name).
    kind : builder name (e.g. 'landmark').
    config : plain dict that rebuilds the network.
    state_dict : name → weight (numpy arrays or torch tensors).
    meta : plain dict of provenance (seed, steps, figures, ...) and options.
    """
    from ..backend import to_numpy

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT, "version": VERSION, "kind": str(kind),
              "config": _plain(dict(config), "config"), "meta": _plain(dict(meta or {}), "meta")}
    arrays = {}
    for name, value in state_dict.items():
        a = np.ascontiguousarray(to_numpy(value))
        if a.dtype.name not in DTYPES:
            raise TypeError(f"weight {name!r} has dtype {a.dtype}; a checkpoint holds {', '.join(DTYPES)}")
        if name == HEADER:
            raise ValueError(f"a weight may not be named {HEADER!r}")
        arrays[name] = a
    arrays[HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)
    return path


def _advice(path: Path) -> str:
    return f"Re-download or retrain it (`dahyf train landmark --out {path.stem}.npz`)."


def _read_npz(path: Path) -> dict:
    from ..fileio import DamagedFileError, UnsafeFileError, read_npz

    try:  # member sizes are checked before anything is decompressed
        z = read_npz(path, MAX_BYTES)
    except (DamagedFileError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable DaHyF checkpoint ({exc}). {_advice(path)}") from exc
    except UnsafeFileError as exc:
        raise CheckpointError(f"{exc} This is not a DaHyF checkpoint. {_advice(path)}") from exc
    raw = z.pop(HEADER, None)
    if raw is None:
        raise CheckpointError(f"{path} is an .npz but not a DaHyF checkpoint (no {HEADER} header). {_advice(path)}")
    if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > MAX_HEADER_BYTES:
        raise CheckpointError(f"{path}: malformed checkpoint header. {_advice(path)}")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: malformed checkpoint header ({type(exc).__name__}). {_advice(path)}") from None
    for name, a in z.items():
        if a.dtype.name not in DTYPES:
            raise CheckpointError(f"{path}: weight {name!r} has dtype {a.dtype}, not a number type. {_advice(path)}")
    weights = z
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a DaHyF checkpoint header. {_advice(path)}")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {header.get('version')!r}; this dahyf reads "
                              f"version {VERSION}. Update dahyf, or retrain the checkpoint.")
    return {"kind": header.get("kind"), "config": header.get("config"), "meta": header.get("meta", {}),
            "state_dict": weights}


def _read_torch(path: Path) -> dict:
    """A checkpoint written with ``torch.save`` by earlier versions (weights_only; needs torch)."""
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"{path} is an old torch checkpoint, and torch is not installed here. Convert it "
                              "where torch is: python -m dahyf.net.checkpoint OLD.pt NEW.npz") from None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise CheckpointError(f"{path} is not a readable DaHyF checkpoint ({type(exc).__name__}: {exc}). "
                              f"{_advice(path)}") from exc
    if not isinstance(payload, dict) or not {"kind", "config", "state_dict"} <= set(payload):
        raise CheckpointError(f"{path} is not a DaHyF checkpoint (expected keys kind, config, state_dict, meta).")
    weights = {k: v.detach().cpu().numpy() for k, v in payload["state_dict"].items()}
    return {"kind": payload["kind"], "config": payload["config"], "meta": payload.get("meta", {}), "state_dict": weights}


def _is_torch_zip(path: Path) -> bool:
    """torch.save writes a zip whose members sit under one folder and include ``data.pkl``."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("/data.pkl") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file safely and check its layout.

    Returns
    -------
    dict: kind (str), config (dict), meta (dict), state_dict (name → numpy array).

    Raises
    ------
    CheckpointError
        Missing, unreadable or malformed files, with what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}. Pass an existing checkpoint file, or omit it to use "
                              f"the bundled default engine ({DEFAULT_CHECKPOINT.name}).")
    payload = _read_torch(path) if _is_torch_zip(path) else _read_npz(path)
    for key in ("config", "meta"):
        if not isinstance(payload[key], dict):
            raise CheckpointError(f"{path}: checkpoint {key} must be a mapping. {_advice(path)}")
    hand_model = payload["config"].get("hand_model", "open")
    if hand_model != "open":
        raise CheckpointError(
            f"{path} names the hand model {hand_model!r}. A checkpoint may only use the bundled 'open' hand "
            "model (a file path inside a checkpoint could make the loader read any file); choose a MANO "
            "folder with --mano / hand_model= instead.")
    return payload


def load_checkpoint(path: str | Path | None = None, device: str = "cpu"):
    """Load a checkpoint into a ready estimator (``estimator.predict(HandBatch)``).

    Parameters
    ----------
    path : the checkpoint file; None → the bundled default engine ``engine/assets/default_engine.npz``.
    device : 'cpu' or 'cuda' ...

    Raises
    ------
    CheckpointError
        Missing, unreadable, malformed or unknown-kind checkpoints, with what to do.
    """
    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    payload = read_checkpoint(path)
    builder = _resolve(payload["kind"])
    try:
        return builder(payload["config"], payload["state_dict"], payload["meta"], device)
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: the checkpoint's config, weights or options are not usable ({exc}). "
                              f"{_advice(path)}") from exc


def convert(src: str | Path, dst: str | Path) -> Path:
    """Rewrite a checkpoint (e.g. an old torch ``.pt``) in the ``.npz`` format, weights bit for bit."""
    p = read_checkpoint(src)
    return save_checkpoint(dst, p["kind"], p["config"], p["state_dict"], p["meta"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dahyf.net.checkpoint",
                                 description="Convert a DaHyF checkpoint (e.g. an old torch .pt) to the .npz format.")
    ap.add_argument("src")
    ap.add_argument("dst")
    args = ap.parse_args(argv)
    out = convert(args.src, args.dst)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
