"""Loading MANO-format hand model files: real MANO ``.pkl`` (restricted unpickler) and ``.npz``.

Real MANO pickles (``MANO_RIGHT.pkl``, ``MANO_LEFT.pkl``) were written by Python 2 with chumpy
and scipy.sparse objects inside. A pickle can run arbitrary code, so they are read with an
unpickler that maps chumpy and scipy.sparse classes to inert stand-ins and refuses every other
global. The result is a plain dict of numpy arrays with the 9 keys of DESIGN.md §2.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import DaHyFUserError
from .tables import MANO_ARRAY_SHAPES, NUM_JOINTS, PARENTS


class ModelFileError(DaHyFUserError, ValueError):
    """A hand model file is missing, unsafe or not in MANO format; the message says what to do."""


class _Inert:
    """Stand-in for a chumpy / scipy.sparse object: keeps the pickled state, runs nothing."""

    _kind = "object"

    def __init__(self, *args, **kwargs):
        self.args = args
        self.state = {}

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}
        self.state = state if isinstance(state, dict) else {"x": state}

    def to_numpy(self) -> np.ndarray:
        if self._kind in ("csc", "csr"):
            return _compressed_to_dense(self.state, by_column=self._kind == "csc")
        if "x" in self.state:
            return np.asarray(_to_plain(self.state["x"]))
        raise ModelFileError(f"cannot read a {self._kind} object from the model file (state keys: {sorted(self.state)})")


def _compressed_to_dense(state: dict, by_column: bool) -> np.ndarray:
    """Dense array of a pickled scipy.sparse CSC (``by_column``) or CSR matrix's state."""
    data, indices, indptr = (np.asarray(state[k]) for k in ("data", "indices", "indptr"))
    shape = tuple(state.get("_shape") or state.get("shape"))
    dense = np.zeros(shape if by_column else shape[::-1], dtype=data.dtype)  # (cols, rows) for CSR
    for major in range(len(indptr) - 1):
        dense[indices[indptr[major]: indptr[major + 1]], major] = data[indptr[major]: indptr[major + 1]]
    return dense if by_column else dense.T


class _Chumpy(_Inert):
    _kind = "chumpy"


class _Csc(_Inert):
    _kind = "csc"


class _Csr(_Inert):
    _kind = "csr"


def _reconstructor(cls, base, state):
    """Replacement for copy_reg._reconstructor limited to the inert classes."""
    if not (isinstance(cls, type) and issubclass(cls, _Inert)):
        raise pickle.UnpicklingError(f"refused to reconstruct {cls!r}")
    return cls()


_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


_SAFE_BUILTINS = {"object": object, "set": set, "frozenset": frozenset}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle asks for a global that a MANO file never holds."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for MANO files: numpy arrays, chumpy/scipy.sparse as inert stand-ins, nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            import numpy.core.multiarray as ma  # noqa: F401  (numpy 1.x path)

            if name == "_reconstruct":
                return np.core.multiarray._reconstruct
            if name == "scalar":
                return np.core.multiarray.scalar
            return getattr(np, name)
        if module.startswith("chumpy"):
            return _Chumpy
        if module.startswith("scipy.sparse"):
            if "csc" in name:
                return _Csc
            if "csr" in name:
                return _Csr
        if (module, name) in {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")}:
            return _reconstructor
        if module in ("__builtin__", "builtins") and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if (module, name) == ("_codecs", "encode"):  # Python 3 protocol-2 pickles of numpy bytes
            import _codecs

            return _codecs.encode
        raise RefusedGlobal(
            f"refused to load global '{module}.{name}': a MANO file holds only numpy, chumpy and "
            "scipy.sparse data. This file is not a MANO model (or has been tampered with)."
        )


def _to_plain(obj):
    if isinstance(obj, _Inert):
        return obj.to_numpy()
    return obj


def restricted_load(data: bytes):
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (latin1 for Python 2 pickles)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def load_mano_pkl(path: str | Path) -> dict[str, np.ndarray]:
    """Read a MANO ``.pkl`` safely into a dict of numpy arrays (the 9 keys of DESIGN.md §2).

    Raises
    ------
    ModelFileError
        When the file is missing, refuses to unpickle safely or lacks MANO arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"MANO file not found: {path}. Download MANO_RIGHT.pkl / MANO_LEFT.pkl from "
                             "https://mano.is.tue.mpg.de and point to the folder that holds them.")
    try:
        raw = restricted_load(path.read_bytes())
    except RefusedGlobal as exc:
        raise ModelFileError(f"{path.name}: {exc}") from None
    except Exception as exc:  # truncated / not a pickle at all
        raise ModelFileError(f"{path.name} is not a readable MANO pickle ({type(exc).__name__}: {exc}).") from None
    if not isinstance(raw, dict):
        raise ModelFileError(f"{path.name} is not a MANO model file (top level is {type(raw).__name__}, not dict).")
    arrays = {k: np.asarray(_to_plain(raw[k])) for k in MANO_ARRAY_SHAPES if k in raw}
    return validate_model_arrays(arrays, source=path.name)


def validate_model_arrays(arrays: dict[str, np.ndarray], source: str = "model") -> dict[str, np.ndarray]:
    """Check the 9 MANO arrays for presence, shape and tree; return them as float64/int64 arrays."""
    missing = [k for k in MANO_ARRAY_SHAPES if k not in arrays]
    if missing:
        raise ModelFileError(f"{source} is not a MANO-format hand model: missing {', '.join(missing)}.")
    V = np.asarray(arrays["v_template"]).shape[0]
    F = np.asarray(arrays["f"]).shape[0]
    dims = {"V": V, "F": F}
    out = {}
    for key, spec in MANO_ARRAY_SHAPES.items():
        a = np.asarray(arrays[key])
        want = tuple(dims.get(d, d) for d in spec)
        if key == "shapedirs" and a.ndim == 3 and a.shape[:2] == want[:2]:
            want = a.shape  # more than 10 shape components is fine; the model uses the first 10
        if a.shape != want:
            raise ModelFileError(f"{source}: '{key}' has shape {a.shape}, expected {want}.")
        out[key] = a.astype(np.int64 if key in ("f", "kintree_table") else np.float64)
    parents = out["kintree_table"][0].copy()
    parents[0] = -1
    if tuple(parents.tolist()) != PARENTS:
        raise ModelFileError(f"{source}: kinematic tree {parents.tolist()} is not MANO's {list(PARENTS)}.")
    if out["f"].min() < 0 or out["f"].max() >= V:
        raise ModelFileError(f"{source}: faces index vertices outside 0..{V - 1}.")
    assert out["J_regressor"].shape[0] == NUM_JOINTS
    return out


def load_model_npz(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a MANO-format ``.npz`` (the open hand model's format, no pickles allowed).

    Returns
    -------
    arrays : the 9 MANO arrays.
    extras : ``tip_vertex_ids`` (5,) and any other arrays stored beside them.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"hand model file not found: {path}. Check the path; if it is the bundled "
                             "open_hand_*.npz, reinstall dahyf (or rebuild it: python -m dahyf.hand.open_hand).")
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    arrays = validate_model_arrays({k: data[k] for k in MANO_ARRAY_SHAPES if k in data}, source=path.name)
    extras = {k: v for k, v in data.items() if k not in MANO_ARRAY_SHAPES}
    return arrays, extras
