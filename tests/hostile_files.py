"""Crafted hostile files for the robustness tests (issue 13's probes), built in memory, never shipped.

Each builder returns bytes. The MANO pickles use only globals a real MANO pickle uses (numpy's
dtype / ndarray / scalar / _reconstruct), which is what made them dangerous: a restricted unpickler
that hands a pickle numpy's real callables can still be crashed or made to allocate gigabytes.
"""
from __future__ import annotations

import pickle

import numpy as np

from dahyf.hand.tables import PARENTS


class Reduce:
    """Pickles as ``callable(*args)`` (and ``BUILD state`` when given): any call a pickle can make."""

    def __init__(self, *reduce_value):
        self.reduce_value = reduce_value

    def __reduce__(self):
        return self.reduce_value


def kintree() -> np.ndarray:
    """MANO's kinematic tree table (2, 16) int64 (root parent as MANO writes it, 2**32 - 1)."""
    return np.array([[2**32 - 1] + list(PARENTS[1:]), list(range(16))], dtype=np.int64)


def object_scalar_pickle() -> bytes:
    """``numpy.dtype('O8')`` rebuilt by BUILD with its flags cleared, then ``scalar(dtype, raw)``.

    numpy then reads the 8 raw bytes as a PyObject pointer: SIGSEGV with numpy's real callables.
    """
    dtype = Reduce(np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, 0))
    scalar = Reduce(np.core.multiarray.scalar, (dtype, b"\x41" * 8))
    return pickle.dumps({"v_template": scalar}, protocol=2)


def zero_stride_pickle(vertices: int = 1_700_000) -> bytes:
    """A complete MANO-like dict whose big arrays are ``ndarray(shape, f8, buffer=8 bytes, strides=0)``.

    About 18 KB; with numpy's real ndarray it becomes 5.5 GB once converted to float64.
    """
    def view(shape):
        return Reduce(np.ndarray, (shape, np.dtype("f8"), b"\0" * 8, 0, (0,) * len(shape)))

    V = vertices
    return pickle.dumps({
        "v_template": view((V, 3)), "shapedirs": view((V, 3, 10)), "posedirs": view((V, 3, 135)),
        "J_regressor": view((16, V)), "weights": view((V, 16)), "hands_components": np.eye(45),
        "hands_mean": np.zeros(45), "kintree_table": kintree(), "f": np.zeros((10, 3), np.int64),
    }, protocol=2)


def uninitialised_pickle() -> bytes:
    """A complete MANO-like dict whose float arrays are ``numpy.ndarray(shape)``: uninitialised memory."""
    V = 778
    return pickle.dumps({
        "v_template": Reduce(np.ndarray, ((V, 3),)), "shapedirs": Reduce(np.ndarray, ((V, 3, 10),)),
        "posedirs": Reduce(np.ndarray, ((V, 3, 135),)), "J_regressor": Reduce(np.ndarray, ((16, V),)),
        "weights": Reduce(np.ndarray, ((V, 16),)), "hands_components": Reduce(np.ndarray, ((45, 45),)),
        "hands_mean": Reduce(np.ndarray, ((45,),)), "kintree_table": kintree(),
        "f": np.zeros((1538, 3), np.int64),
    }, protocol=2)


#: name -> builder of the three MANO pickle probes of issue 13.
MANO_PROBES = {
    "object_scalar": object_scalar_pickle,
    "zero_stride": zero_stride_pickle,
    "uninitialised": uninitialised_pickle,
}


def npz_bomb(path, arrays: dict[str, np.ndarray], bomb: str, declared_bytes: int) -> None:
    """Write an ``.npz`` holding ``arrays`` plus a member ``bomb``: about ``declared_bytes`` of float64 zeros.

    The zeros are deflated once as a 16 MiB block and that output is repeated (a fresh deflate
    stream ended by a full flush can be concatenated), so a 4.4 GB member costs a few MB on disk and
    a second or two to write: the CRC is still computed over every byte. The result is a valid zip
    that decompresses to the full size.
    """
    import zipfile
    import zlib

    block = bytes(2**24)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()

    class _Repeat:  # replaces the member's compressor once the .npy header is written
        def compress(self, data):
            return piece

        def flush(self):
            return final

    blocks = max(1, declared_bytes // len(block))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, a in arrays.items():
            with zf.open(f"{name}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.asarray(a), allow_pickle=False)
        with zf.open(f"{bomb}.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": "<f8", "fortran_order": False, "shape": (blocks * len(block) // 8,)})
            tail = fh._compressor.flush(zlib.Z_FULL_FLUSH)
            fh._fileobj.write(tail)
            fh._compress_size += len(tail)
            fh._compressor = _Repeat()
            for _ in range(blocks):
                fh.write(block)
