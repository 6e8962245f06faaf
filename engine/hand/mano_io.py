"""Loading MANO-format hand model files: real MANO ``.pkl`` (restricted unpickler) and ``.npz``.

A MANO pickle is read by :mod:`dahyf.hand.mano_pickle`, which never hands the pickle a real callable
(stand-ins only; arrays rebuilt afterwards for plain number types, sizes checked before allocating).
Every failure is a :class:`ModelFileError` naming the file. The result is a plain dict of numpy
arrays with the 9 keys of DESIGN.md §2, checked by :func:`validate_model_arrays`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DaHyFUserError
from .mano_pickle import MAX_FACES, MAX_SHAPE_COMPONENTS, MAX_VERTICES, _Refused, _to_array, restricted_load
from .tables import MANO_ARRAY_SHAPES, NUM_JOINTS, PARENTS


class ModelFileError(DaHyFUserError, ValueError):
    """A hand model file is missing, unsafe or not in MANO format; the message says what to do."""


#: Largest MANO pickle read (bytes). Real MANO files are about 4 MB.
MAX_PICKLE_BYTES = 32 * 2**20
#: Largest MANO-format .npz read, uncompressed (bytes). The open hand model is about 7 MB.
MAX_NPZ_BYTES = 128 * 2**20


def load_mano_pkl(path: str | Path) -> dict[str, np.ndarray]:
    """Read a MANO ``.pkl`` safely into a dict of numpy arrays (the 9 keys of DESIGN.md §2).

    Raises
    ------
    ModelFileError
        When the file is missing, too large, refuses to unpickle safely or lacks MANO arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"MANO file not found: {path}. Download MANO_RIGHT.pkl / MANO_LEFT.pkl from "
                             "https://mano.is.tue.mpg.de and point to the folder that holds them.")
    size = path.stat().st_size
    if size > MAX_PICKLE_BYTES:
        raise ModelFileError(f"{path.name} is {size / 2**20:.0f} MiB; a MANO pickle is about 4 MiB (at most "
                             f"{MAX_PICKLE_BYTES / 2**20:.0f} MiB is read). Use the MANO_RIGHT.pkl / MANO_LEFT.pkl "
                             "files from the MANO website.")
    try:
        raw = restricted_load(path.read_bytes())
        if not isinstance(raw, dict):
            raise _Refused(f"refused a top level that is a {type(raw).__name__}, not a dict")
        arrays = {k: _to_array(raw[k]) for k in MANO_ARRAY_SHAPES if k in raw}
    except _Refused as exc:
        raise ModelFileError(f"{path.name}: {exc}. It is not a MANO model, or it has been tampered with: use the "
                             "MANO_RIGHT.pkl / MANO_LEFT.pkl files from the MANO website.") from None
    except Exception as exc:  # truncated / not a pickle at all / out of memory
        raise ModelFileError(f"{path.name} is not a readable MANO pickle ({type(exc).__name__}: {exc}).") from None
    return validate_model_arrays(arrays, source=path.name)


def validate_model_arrays(arrays: dict[str, np.ndarray], source: str = "model") -> dict[str, np.ndarray]:
    """Check the 9 MANO arrays for presence, type, size, shape, finiteness and tree; return them as float64/int64.

    Sizes are checked against MAX_VERTICES / MAX_FACES / MAX_SHAPE_COMPONENTS before any conversion.
    """
    missing = [k for k in MANO_ARRAY_SHAPES if k not in arrays]
    if missing:
        raise ModelFileError(f"{source} is not a MANO-format hand model: missing {', '.join(missing)}.")
    arrays = {k: np.asarray(arrays[k]) for k in MANO_ARRAY_SHAPES}
    for key, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise ModelFileError(f"{source}: '{key}' holds {a.dtype} values, not numbers.")
        if a.ndim != len(MANO_ARRAY_SHAPES[key]):
            raise ModelFileError(f"{source}: '{key}' has shape {a.shape}, expected {MANO_ARRAY_SHAPES[key]}.")
    V = arrays["v_template"].shape[0]
    F = arrays["f"].shape[0]
    K = arrays["shapedirs"].shape[2]
    if not (1 <= V <= MAX_VERTICES and 1 <= F <= MAX_FACES and 10 <= K <= MAX_SHAPE_COMPONENTS):
        raise ModelFileError(f"{source}: {V} vertices, {F} faces and {K} shape components; a MANO-format model has "
                             f"1 to {MAX_VERTICES} vertices, at most {MAX_FACES} faces and 10 to "
                             f"{MAX_SHAPE_COMPONENTS} shape components (MANO: 778, 1538, 10).")
    dims = {"V": V, "F": F}
    out = {}
    for key, spec in MANO_ARRAY_SHAPES.items():
        a = arrays[key]
        want = tuple(dims.get(d, d) for d in spec)
        if key == "shapedirs":
            want = want[:2] + (K,)  # more than 10 shape components is fine; the model uses the first 10
        if a.shape != want:
            raise ModelFileError(f"{source}: '{key}' has shape {a.shape}, expected {want}.")
        if key in ("f", "kintree_table"):
            if a.dtype.kind not in "iu":
                raise ModelFileError(f"{source}: '{key}' holds {a.dtype} values, not integers.")
            if key == "f" and (a.min() < 0 or a.max() >= V):
                raise ModelFileError(f"{source}: faces index vertices outside 0..{V - 1}.")
            out[key] = a.astype(np.int64)  # kintree_table[0, 0] is 2**32 - 1 in MANO: wraps to -1 below
        else:
            out[key] = a.astype(np.float64)
            if not np.isfinite(out[key]).all():
                raise ModelFileError(f"{source}: '{key}' holds NaN or infinite values.")
    parents = out["kintree_table"][0].copy()
    parents[0] = -1
    if tuple(parents.tolist()) != PARENTS:
        raise ModelFileError(f"{source}: kinematic tree {parents.tolist()} is not MANO's {list(PARENTS)}.")
    assert out["J_regressor"].shape[0] == NUM_JOINTS
    return out


def load_model_npz(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a MANO-format ``.npz`` (the open hand model's format, no pickles allowed).

    Member sizes are checked against MAX_NPZ_BYTES before anything is decompressed.

    Returns
    -------
    arrays : the 9 MANO arrays.
    extras : ``tip_vertex_ids`` (5,) and any other arrays stored beside them.
    """
    from ..fileio import read_npz

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"hand model file not found: {path}. Check the path; if it is the bundled "
                             "open_hand_*.npz, reinstall dahyf (or rebuild it: python -m dahyf.hand.open_hand).")
    try:
        data = read_npz(path, MAX_NPZ_BYTES)
    except DaHyFUserError as exc:   # too large, not plain arrays, or damaged
        raise ModelFileError(f"{exc} Use a MANO-format .npz written by dahyf.") from None
    except OSError as exc:
        raise ModelFileError(f"Cannot read the hand model {path}: {exc.strerror or exc}.") from None
    arrays = validate_model_arrays({k: data[k] for k in MANO_ARRAY_SHAPES if k in data}, source=path.name)
    extras = {k: v for k, v in data.items() if k not in MANO_ARRAY_SHAPES}
    return arrays, extras
