"""The array backend of the engine's formulas: numpy at capture time, torch in training and on CUDA.

Every formula (kinematics, encodings, camera, confidence, the landmark network's forward, the
refinement) is written once against the Python array API standard and runs on the arrays it is
given: ``xp = namespace(x)`` is numpy's namespace for numpy arrays (torch is never imported) and
torch's for tensors (autograd and CUDA work as usual). ``array_api_compat`` supplies the standard
namespace of both libraries.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np
from array_api_compat import array_namespace, device, is_numpy_array, is_torch_array

__all__ = ["namespace", "device", "is_numpy_array", "is_torch_array", "to_numpy", "to_numpy_outputs", "asarray_like", "rows_finite", "solve_batched", "blas_threads"]


def namespace(*arrays):
    """The array-API namespace of ``arrays`` (numpy or torch); Python scalars are ignored."""
    return array_namespace(*(a for a in arrays if not isinstance(a, (int, float, bool))))


def to_numpy(x, dtype=None) -> np.ndarray:
    """A numpy array of ``x`` (a numpy array, a torch tensor on any device, or a sequence)."""
    if is_torch_array(x):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def to_numpy_outputs(out: dict) -> dict:
    """An estimator's output dict as numpy arrays (floating ones as float32)."""
    res = {}
    for k, v in out.items():
        a = to_numpy(v)
        res[k] = a.astype(np.float32) if a.dtype.kind == "f" else a
    return res


def asarray_like(x, like, dtype=None):
    """``x`` (numpy array, tensor or sequence) as an array of ``like``'s library and device.

    dtype: the result's dtype (default: inferred from ``x``).
    """
    xp = namespace(like)
    if is_torch_array(x) and is_torch_array(like):
        return x.to(dtype=dtype or x.dtype, device=like.device)
    if is_torch_array(like):
        x = np.ascontiguousarray(x)
    return xp.asarray(x, dtype=dtype, device=device(like))


def rows_finite(x):
    """(B, ...) → (B,) bool: every value of the row is finite (B may be 0)."""
    xp = namespace(x)
    return xp.all(xp.isfinite(x), axis=tuple(range(1, x.ndim))) if x.ndim > 1 else xp.isfinite(x)


def solve_batched(A, b):
    """Solve ``A x = b`` row by row of a batch; a row that cannot be solved gets NaN (never raises).

    Parameters
    ----------
    A : (B, n, n); b : (B, n, k).

    Returns
    -------
    x : (B, n, k), NaN in the rows whose system was singular or non-finite.
    """
    xp = namespace(A, b)
    finite = rows_finite(A) & rows_finite(b)
    eye = xp.eye(A.shape[-1], dtype=A.dtype, device=device(A))
    A = xp.where(finite[:, None, None], A, eye)
    b = xp.where(finite[:, None, None], b, xp.zeros_like(b))
    try:
        x = xp.linalg.solve(A, b)
    except (ValueError, RuntimeError):   # numpy LinAlgError / torch linalg error: one singular row
        rows = []
        for i in range(A.shape[0]):
            try:
                rows.append(xp.linalg.solve(A[i:i + 1], b[i:i + 1]))
            except (ValueError, RuntimeError):
                rows.append(xp.full(b[i:i + 1].shape, float("nan"), dtype=b.dtype, device=device(b)))
        x = xp.concat(rows, axis=0)
    return xp.where(finite[:, None, None], x, xp.full(x.shape, float("nan"), dtype=x.dtype, device=device(x)))


_CONTROLLER = None
_CONTROLLER_LOCK = threading.Lock()


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Run the block with at most ``n`` BLAS threads (numpy's OpenBLAS / MKL), restored afterwards.

    The engine's matrices are small (a 384-wide MLP on a chunk of hands, 51 × 51 systems per hand):
    a multi-threaded BLAS spends more time waking threads than computing, and on a busy machine it
    competes with the landmarker (measured: the engine stage 3–10× slower with 2 OpenBLAS threads on
    a loaded 2-core machine). None: leave the setting alone. Uses threadpoolctl.
    """
    global _CONTROLLER
    if n is None:
        yield
        return
    with _CONTROLLER_LOCK:
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=n, user_api="blas"):
        yield
