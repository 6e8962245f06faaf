"""Fuzzing the readers of untrusted files (issue 13 §7): MANO pickles, takes, checkpoints, videos.

Property for every reader: a damaged or hostile file gives the reader's own user error (a
DaHyFUserError subclass with a message), or a valid result; never another exception, a crash or
a large allocation. Hypothesis mutates real files (byte flips, cuts, insertions) and builds
structured hostile values; ``derandomize=True`` makes every run (and CI) try the same examples,
and the example counts keep the whole module to a few seconds. The fixed probes of issue 13 are
in test_mano_io.py and test_capture_take.py.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dahyf.assets import SAMPLE_VIDEO as SAMPLE
from dahyf.capture.errors import CaptureError
from dahyf.capture.take import ROW_FIELDS, Take
from dahyf.errors import DaHyFUserError
from dahyf.hand import mano_io, mano_pickle
from dahyf.hand.mano_io import ModelFileError, load_mano_pkl
from hostile_files import MANO_PROBES, Reduce, kintree



def fuzz_settings(examples: int):
    """Reproducible (derandomized, no example database), no per-example deadline (the CPU is shared)."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@st.composite
def mutated(draw, data: bytes, max_edits: int = 4) -> bytes:
    """``data`` with a few byte flips, insertions, deletions, or cut short."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, max_edits))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        i = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "flip" and out:
            out[i] = draw(st.integers(0, 255))
        elif kind == "insert":
            out[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del out[i:i + draw(st.integers(1, 8))]
        else:
            del out[i:]
    return bytes(out)


# --- MANO pickles -------------------------------------------------------------------------------
class _ChumpyLike:
    def __init__(self, x):
        self.x = x


def _small_mano_like_pickle(protocol: int) -> bytes:
    """A small pickle with every kind of object a MANO file holds (arrays, chumpy, csc, set, scalars)."""
    import sys
    import types

    import scipy.sparse

    module = types.ModuleType("chumpy.ch")
    _ChumpyLike.__module__, _ChumpyLike.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = _ChumpyLike
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), module
    try:
        return pickle.dumps({
            "v_template": _ChumpyLike(np.linspace(0, 1, 12).reshape(4, 3)),
            "J_regressor": scipy.sparse.csc_matrix(np.eye(4)[:3]),
            "kintree_table": kintree(), "f": np.array([[0, 1, 2]], np.uint32),
            "bs_style": "lbs", "tags": {1, 2}, "scale": np.float64(1.5), "empty": b"",
        }, protocol=protocol)
    finally:
        del sys.modules["chumpy.ch"], sys.modules["chumpy"]


def _read_pickle(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(data)
    try:
        load_mano_pkl(path)
    except ModelFileError as exc:
        assert "MANO_RIGHT.pkl" in str(exc)


@pytest.mark.parametrize("protocol", [0, 2])
def test_fuzz_mano_pickle_bytes(tmp_path, protocol):
    base = _small_mano_like_pickle(protocol)

    @fuzz_settings(80)
    @given(mutated(base))
    def check(data):
        _read_pickle(tmp_path, data)

    check()


_DTYPE_SPECS = st.sampled_from(["f8", "<f4", "O8", "O", "V8", "c16", "U3", "S4", "b1", "i8", "M8", "f8,i4", "u1"])
_STATES = st.one_of(
    st.none(),
    st.tuples(st.just(3), st.sampled_from(["<", ">", "|", "=", "?"]), st.none(), st.none(), st.none(),
              st.integers(-1, 2**31), st.integers(-1, 64), st.integers(0, 2**16)),
    st.tuples(st.just(3), st.just("|"), st.tuples(st.just("f8"), st.just((2, 2))), st.none(), st.none(),
              st.just(-1), st.just(-1), st.just(0)),
)
_SHAPES = st.lists(st.integers(-3, 2**40), max_size=6).map(tuple)


@st.composite
def hostile_numpy_calls(draw):
    """Any call a pickle can make with numpy's allowed globals, with hostile arguments."""
    dtype = Reduce(np.dtype, (draw(_DTYPE_SPECS), False, True), draw(_STATES))
    raw = draw(st.one_of(st.binary(max_size=64), st.lists(st.floats(allow_nan=True), max_size=4)))
    kind = draw(st.sampled_from(["scalar", "ndarray", "reconstruct", "dtype"]))
    if kind == "scalar":
        return Reduce(np.core.multiarray.scalar, (dtype, raw))
    if kind == "ndarray":
        return Reduce(np.ndarray, (draw(_SHAPES), dtype, raw, 0, draw(_SHAPES)))
    if kind == "dtype":
        return dtype
    state = (1, draw(_SHAPES), dtype, draw(st.booleans()), raw)
    return Reduce(np.core.multiarray._reconstruct, (np.ndarray, (0,), b"b"), state)


def test_fuzz_mano_pickle_numpy_calls(tmp_path):
    keys = st.sampled_from(["v_template", "shapedirs", "f", "kintree_table", "hands_mean", "other"])

    @fuzz_settings(100)
    @given(st.dictionaries(keys, hostile_numpy_calls(), min_size=1, max_size=3))
    def check(content):
        try:
            data = pickle.dumps(content, protocol=2)
        except Exception:       # numpy refused to build the value while *writing* it: nothing to read
            return
        _read_pickle(tmp_path, data)

    check()


def test_fuzz_mano_probes_mutated(tmp_path):
    @fuzz_settings(60)
    @given(st.sampled_from(sorted(MANO_PROBES)).flatmap(lambda name: mutated(MANO_PROBES[name]())))
    def check(data):
        _read_pickle(tmp_path, data)

    check()


def test_restricted_unpickler_refuses_every_other_global():
    @fuzz_settings(100)
    @given(st.text("abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=20),
           st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
    def check(module, name):
        if module.startswith(("chumpy", "scipy.sparse")) or (module, name) in mano_pickle._GLOBALS:
            return
        data = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n)R."
        with pytest.raises(mano_pickle.RefusedGlobal):
            mano_pickle.restricted_load(data)

    check()


# --- takes ---------------------------------------------------------------------------------------
def _valid_take() -> Take:
    rng = np.random.default_rng(0)
    n = 6
    rows = {k: (rng.normal(size=(n,) + shape) * 0.1).astype(dt) for k, (shape, dt) in ROW_FIELDS.items()}
    rows.update(track=np.array([0, 1, 0, 1, 0, 0], np.int32), frame=np.array([0, 0, 1, 1, 2, 3], np.int64),
                time_s=np.array([0, 0, 1, 1, 2, 3]) / 30.0, confidence=rng.random(n).astype(np.float32),
                filled=rng.random(n) < 0.5)
    return Take(30.0, (640, 480), 800.0, ("right", "left"), rows, {"source": "clip.mp4"})


def _read_take(path: Path) -> None:
    try:
        take = Take.load(path)
    except CaptureError as exc:
        assert path.name in str(exc)
        return
    for k, (shape, dt) in ROW_FIELDS.items():   # what loads is what the rest of dahyf expects
        assert take.rows[k].dtype == np.dtype(dt) and take.rows[k].shape == (len(take),) + shape
        if take.rows[k].dtype.kind == "f":
            assert np.isfinite(take.rows[k]).all()
    take.save(path.with_name("resaved.npz"))


def test_fuzz_take_bytes(tmp_path):
    good = _valid_take().save(tmp_path / "good.npz").read_bytes()

    @fuzz_settings(150)
    @given(mutated(good, max_edits=3))
    def check(data):
        path = tmp_path / "take.npz"
        path.write_bytes(data)
        _read_take(path)

    check()


_VALUES = st.sampled_from([0.0, -1.0, 1e30, np.nan, np.inf, -np.inf, 2**40, -2**40, 7, 1e-30])
_DTYPES = st.sampled_from(["f4", "f8", "f2", "i8", "u8", "i1", "?", "c8", "U4", "S4", "<M8[s]"])


@st.composite
def take_field_edits(draw):
    """{field: replacement array} for up to 3 of a take's fields, with hostile shapes, dtypes and values."""
    take = _valid_take()
    names = list(ROW_FIELDS) + ["fps", "image_size", "focal", "handedness", "format_version", "meta_json"]
    edits = {}
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)):
        base = np.asarray(take.rows[name]) if name in take.rows else np.asarray(1.0)
        how = draw(st.sampled_from(["value", "dtype", "shape", "text"]))
        if how == "value" and base.size:
            a = base.astype(np.float64).copy()
            a.flat[draw(st.integers(0, a.size - 1))] = draw(_VALUES)
            a = a.astype(base.dtype) if base.dtype.kind == "f" else a
        elif how == "dtype":
            try:
                a = base.astype(draw(_DTYPES))
            except (TypeError, ValueError):
                a = base
        elif how == "shape":
            a = np.zeros(draw(st.lists(st.integers(0, 5), max_size=3)), draw(_DTYPES))
        else:
            a = np.asarray(draw(st.text(max_size=30)))
        edits[name] = a
    return edits


def test_fuzz_take_fields(tmp_path):
    take = _valid_take()
    base = {k: v for k, v in take.rows.items()}
    base.update(fps=np.float64(30), image_size=np.array([640, 480], np.int32), focal=np.float64(800),
                handedness=np.array(["right", "left"]), format_version=np.int32(1),
                meta_json=np.asarray('{"source": "clip.mp4"}'))

    @fuzz_settings(200)
    @given(take_field_edits())
    def check(edits):
        path = tmp_path / "take.npz"
        try:
            np.savez_compressed(path, **{**base, **edits})
        except ValueError:    # e.g. object arrays: cannot be written without pickles
            return
        _read_take(path)

    check()


# --- checkpoints -----------------------------------------------------------------------------------
def test_fuzz_checkpoint_bytes(tmp_path):
    from dahyf.net.checkpoint import DEFAULT_CHECKPOINT, read_checkpoint

    good = DEFAULT_CHECKPOINT.read_bytes()

    @fuzz_settings(40)
    @given(mutated(good, max_edits=3))
    def check(data):
        path = tmp_path / f"engine{DEFAULT_CHECKPOINT.suffix}"
        path.write_bytes(data)
        try:
            read_checkpoint(path)
        except DaHyFUserError as exc:
            assert path.name in str(exc)

    check()


# --- videos ------------------------------------------------------------------------------------------
def test_fuzz_video_bytes(tmp_path):
    from dahyf.capture.video import VideoReader

    good = SAMPLE.read_bytes()[:200_000]   # the header and the first frames

    @fuzz_settings(25)
    @given(mutated(good, max_edits=3))
    def check(data):
        path = tmp_path / "clip.mp4"
        path.write_bytes(data)
        try:
            reader = VideoReader(path, (0, 4))
        except CaptureError as exc:
            assert "clip.mp4" in str(exc)
            return
        try:
            for frame in reader:
                assert frame.image.ndim == 3 and frame.image.shape[2] == 3
        finally:
            reader.close()

    check()


def test_fuzz_files_are_zip_or_not(tmp_path):
    """Random bytes (not even a zip) as a take and as a model .npz: refused by the readers' messages."""
    @fuzz_settings(50)
    @given(st.binary(max_size=300).map(lambda b: b"PK\x03\x04" + b if b[:1] == b"\0" else b))
    def check(data):
        path = tmp_path / "x.npz"
        path.write_bytes(data)
        with pytest.raises(CaptureError):
            Take.load(path)
        with pytest.raises(ModelFileError):
            mano_io.load_model_npz(path)

    check()
