"""Checkpoints that carry their config: one ``.npz`` file, read without pickle and without torch.

Layout: one array per weight, named as the network's state dict, plus ``__dahyf__``: the UTF-8
bytes (uint8) of a JSON header ``{"format": "dahyf-checkpoint", "version": 1, "kind", "config",
"meta"}``. It is read with ``numpy.load(allow_pickle=False)``: object arrays are refused, the
header is plain JSON, member sizes are checked before anything is decompressed, and the config and
meta are checked by the kind's builder (typed fields, whitelisted options). ``kind`` selects the
builder that turns the config and weights into an estimator ('landmark': numpy at capture time;
'dahyf': the torch image network).

A checkpoint records which *kind* of hand model its network was trained with, ``config.hand_model``
'open' or 'mano' (:data:`HAND_MODEL_KINDS`), never a file: the MANO files are licence-gated and the
user's own, so the caller names them when loading (``load_checkpoint(..., hand_model=DIR)``: the
``--mano DIR`` of the command line, the add-on's MANO folder preference). A path inside a checkpoint
is refused unread (it could point the loader at any file); ``python -m dahyf.net.checkpoint OLD NEW
--hand-model mano`` repairs a checkpoint written when the trainer still stored the ``--mano`` path.

Checkpoints written by earlier versions with ``torch.save`` (``.pt``) are still read, with
``torch.load(weights_only=True)``, when torch is installed; ``python -m dahyf.net.checkpoint OLD.pt
NEW.npz`` converts one (the weights bit for bit).
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..assets import DEFAULT_CHECKPOINT
from ..errors import DaHyFUserError
from ..fileio import atomic_write

#: kind → builder, a lazy "module:function" string. A builder is
#: ``builder(config: dict, weights: dict[str, np.ndarray], meta: dict, device: str, hand_model: str) -> estimator``
#: (``hand_model``: the source of the hand model the network is built with, see :func:`network_hand_model`)
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
#: What a checkpoint's ``config.hand_model`` may say: the kind of hand model the network was trained
#: with — 'open' (the bundled open hand model) or 'mano' (the real MANO, whose files the caller gives
#: when loading). Never a path: a path inside a downloaded file could make the loader read any file.
HAND_MODEL_KINDS = ("open", "mano")
#: How the user names a MANO folder, for messages.
MANO_ADVICE = ("pass the folder holding MANO_RIGHT.pkl / MANO_LEFT.pkl: --mano DIR on the command line, the MANO "
               "folder in the add-on's preferences, or hand_model=DIR in Python")


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
    hand_model = dict(config).get("hand_model", "open")
    if not (isinstance(hand_model, str) and hand_model in HAND_MODEL_KINDS):
        raise ValueError(f"config.hand_model must be one of {HAND_MODEL_KINDS} (the kind the network was trained "
                         f"with, never a path), got {hand_model!r}")
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


def _read_payload(path: Path) -> dict:
    """The checkpoint's kind, config, meta and weights, its layout checked (not its hand model)."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}. Pass an existing checkpoint file, or omit it to use "
                              f"the bundled default engine ({DEFAULT_CHECKPOINT.name}).")
    payload = _read_torch(path) if _is_torch_zip(path) else _read_npz(path)
    for key in ("config", "meta"):
        if not isinstance(payload[key], dict):
            raise CheckpointError(f"{path}: checkpoint {key} must be a mapping. {_advice(path)}")
    return payload


def _check_hand_model_kind(path: Path, config: dict) -> None:
    """CheckpointError unless ``config.hand_model`` is one of :data:`HAND_MODEL_KINDS` (absent: 'open')."""
    kind = config.get("hand_model", "open")
    if isinstance(kind, str) and kind in HAND_MODEL_KINDS:
        return
    shown = repr(kind) if len(repr(kind)) <= 120 else repr(kind)[:117] + "..."
    raise CheckpointError(
        f"{path} names the hand model {shown}. A checkpoint records only the kind of hand model it was trained "
        f"with ({' or '.join(map(repr, HAND_MODEL_KINDS))}), never a file: a path inside a checkpoint could make "
        "the loader read any file, and it is not read. Checkpoints of `dahyf train net --mano DIR` written before "
        f"this rule stored the path: convert one with `python -m dahyf.net.checkpoint {path} NEW.npz --hand-model "
        "mano` (or `open` if it was trained on the open hand model), then load NEW.npz with --mano DIR.")


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file safely and check its layout.

    Returns
    -------
    dict: kind (str), config (dict), meta (dict), state_dict (name → numpy array).

    Raises
    ------
    CheckpointError
        Missing, unreadable or malformed files, and configs whose ``hand_model`` is not one of
        :data:`HAND_MODEL_KINDS` (a path is refused without being opened), with what to do.
    """
    path = Path(path)
    payload = _read_payload(path)
    _check_hand_model_kind(path, payload["config"])
    return payload


def network_hand_model(path: str | Path, config: dict, hand_model: str | Path = "open") -> str:
    """The source of the hand model a checkpoint's network is built with.

    An 'open' checkpoint is built with the bundled open hand model, whatever ``hand_model`` says: its
    network was trained on that model. (A MANO folder given with it is still coherent: θ is the same
    16-joint axis-angle for both models, and the capture computes its output hand — joints, mesh,
    take — with the caller's model, as for the bundled landmark engine.) A 'mano' checkpoint needs
    the caller's MANO folder or file: the MANO files are never part of a checkpoint.

    Parameters
    ----------
    path : the checkpoint (for messages); config : its config (kind already checked).
    hand_model : the caller's hand model: 'open' or a MANO folder / file (``--mano DIR``).

    Raises
    ------
    CheckpointError
        A 'mano' checkpoint without a MANO folder, saying how to give one.
    """
    if config.get("hand_model", "open") == "open":
        return "open"
    if hand_model is None or str(hand_model) == "open":
        raise CheckpointError(f"{path} was trained with the real MANO hand model, whose files are not part of a "
                              f"checkpoint: {MANO_ADVICE}.")
    return str(hand_model)


def load_checkpoint(path: str | Path | None = None, device: str = "cpu", hand_model: str | Path = "open"):
    """Load a checkpoint into a ready estimator (``estimator.predict(HandBatch)``).

    Parameters
    ----------
    path : the checkpoint file; None → the bundled default engine ``engine/assets/default_engine.npz``.
    device : 'cpu' or 'cuda' ...
    hand_model : the caller's hand model, 'open' or a folder (file) with the MANO pickles — the user's
        ``--mano DIR`` / the add-on's MANO folder. A checkpoint trained with MANO needs it; see
        :func:`network_hand_model`.

    Raises
    ------
    CheckpointError
        Missing, unreadable, malformed or unknown-kind checkpoints, a checkpoint naming a hand-model
        path, and a MANO checkpoint without a (loadable) MANO folder, with what to do.
    """
    from ..hand.mano_io import ModelFileError

    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    payload = read_checkpoint(path)
    builder = _resolve(payload["kind"])
    source = network_hand_model(path, payload["config"], hand_model)
    try:
        return builder(payload["config"], payload["state_dict"], payload["meta"], device, hand_model=source)
    except ModelFileError as exc:
        raise CheckpointError(f"{path}: its network needs the hand model {source!r}, which cannot be loaded: {exc}") from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: the checkpoint's config, weights or options are not usable ({exc}). "
                              f"{_advice(path)}") from exc


def convert(src: str | Path, dst: str | Path, hand_model: str | None = None) -> Path:
    """Rewrite a checkpoint (e.g. an old torch ``.pt``) in the ``.npz`` format, weights bit for bit.

    ``hand_model`` ('open' | 'mano') replaces ``config.hand_model``: how a checkpoint that stored a
    hand-model path is repaired (the path is not read). None keeps it (it must then be a kind).
    """
    src = Path(src)
    p = _read_payload(src)
    if hand_model is not None:
        if hand_model not in HAND_MODEL_KINDS:
            raise CheckpointError(f"--hand-model must be one of {', '.join(HAND_MODEL_KINDS)}, got {hand_model!r}")
        p["config"] = {**p["config"], "hand_model": hand_model}
    _check_hand_model_kind(src, p["config"])
    return save_checkpoint(dst, p["kind"], p["config"], p["state_dict"], p["meta"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dahyf.net.checkpoint",
                                 description="Convert a DaHyF checkpoint (e.g. an old torch .pt) to the .npz format.")
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--hand-model", choices=HAND_MODEL_KINDS,
                    help="the kind of hand model the network was trained with, replacing the checkpoint's own "
                         "(repairs checkpoints that stored a --mano path: 'mano')")
    args = ap.parse_args(argv)
    try:
        out = convert(args.src, args.dst, args.hand_model)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
