"""The MANO reader against hostile pickles (issue 13's probes): refused with a ModelFileError, no crash,
no large allocation, nothing of numpy's reconstruction code run. Crashing probes run in a subprocess."""
from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dahyf.assets import SAMPLE_VIDEO as SAMPLE
from dahyf.hand import mano_io, mano_pickle
from dahyf.hand.mano_io import ModelFileError, load_mano_pkl, load_model_npz
from dahyf.hand.mano_pickle import pickled_array, restricted_load
from hostile_files import MANO_PROBES, Reduce, kintree, npz_bomb


#: The child process reads one pickle under an address-space limit and says what happened.
_CHILD = textwrap.dedent("""
    import re, resource, sys
    from dahyf.hand.mano_io import ModelFileError, load_mano_pkl
    vm = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
    limit = vm + 1024 * 2**20      # imports done: 1 GiB more address space at most
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        load_mano_pkl(sys.argv[1])
    except ModelFileError as exc:
        print("REFUSED", exc)
    else:
        print("LOADED")
    print("GREW_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
""")


@pytest.mark.parametrize("probe", sorted(MANO_PROBES))
def test_hostile_mano_pickle_is_refused_without_crash_or_allocation(tmp_path, probe):
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(MANO_PROBES[probe]())
    r = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"the reader died (signal {-r.returncode})" if r.returncode < 0 else r.stderr[-2000:]
    assert r.stdout.startswith("REFUSED MANO_RIGHT.pkl: refused"), r.stdout
    grew_mb = int(r.stdout.split("GREW_KB")[1]) / 1024
    assert grew_mb < 100, f"reading a {path.stat().st_size}-byte pickle grew memory by {grew_mb:.0f} MB"


@pytest.mark.slow
def test_cli_exits_with_a_message_on_hostile_mano_pickles(tmp_path):
    """Each probe as the --mano folder of `dahyf capture`: exit 1, a message naming the file, < 500 MB."""
    wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "sys.stderr.write(r.stderr); print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    for probe, build in sorted(MANO_PROBES.items()):
        folder = tmp_path / probe
        folder.mkdir()
        (folder / "MANO_RIGHT.pkl").write_bytes(build())
        out = tmp_path / f"{probe}.npz"
        r = subprocess.run(
            [sys.executable, "-c", wrapper, sys.executable, "-m", "dahyf", "capture", str(SAMPLE), "-o", str(out),
             "--mano", str(folder), "--hands", "right", "--frames", "0:3", "--quiet"],
            capture_output=True, text=True, timeout=300)
        code, maxrss_kb = map(int, r.stdout.split())
        assert code == 1, (probe, code, r.stderr[-2000:])
        assert "MANO_RIGHT.pkl" in r.stderr and "Traceback" not in r.stderr, (probe, r.stderr[-2000:])
        assert maxrss_kb < 500 * 1024, f"{probe}: the CLI peaked at {maxrss_kb / 1024:.0f} MB"
        assert not out.exists()


def test_stand_ins_run_nothing_of_numpy(monkeypatch):
    """The unpickler resolves numpy's globals to stand-ins: the real callables are never reachable."""
    called = []
    data = pickle.dumps({"a": np.arange(6.0).reshape(2, 3), "s": np.float32(2.5)}, protocol=2)
    monkeypatch.setattr(np.core.multiarray, "_reconstruct", lambda *a: called.append(a))
    monkeypatch.setattr(np.core.multiarray, "scalar", lambda *a: called.append(a))
    raw = restricted_load(data)
    assert called == []
    np.testing.assert_array_equal(pickled_array(raw["a"]), np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("dtype", ["<f8", ">f4", "<i8", "u1", "?", "<u4", "<f2"])
def test_arrays_of_allowed_dtypes_round_trip(protocol, dtype):
    a = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    for arr in (a, np.asfortranarray(a), a[:0]):
        got = pickled_array(restricted_load(pickle.dumps(arr, protocol=protocol)))
        assert got.dtype == arr.dtype and got.shape == arr.shape
        np.testing.assert_array_equal(got, arr)


@pytest.mark.parametrize("arr, what", [
    (np.array([1 + 2j]), "array type"),
    (np.array(["abc"]), "array type"),
    (np.array([object()], dtype=object), "refused"),
    (np.array([[1.0], [2.0]], dtype=object), "array type"),
    (np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]), "array type"),
    (np.zeros((2, 2, 2, 2, 2)), "shape"),
])
def test_arrays_of_refused_kinds(arr, what):
    with pytest.raises(mano_pickle._Refused, match=what):
        pickled_array(restricted_load(pickle.dumps(arr, protocol=2)))


def _array_with_state(shape, dtype, raw, fortran=False):
    """An ndarray pickle with a hand-written state (as numpy's own __reduce__ would write it)."""
    return Reduce(np.core.multiarray._reconstruct, (np.ndarray, (0,), b"b"), (1, shape, np.dtype(dtype), fortran, raw))


@pytest.mark.parametrize("shape, raw, match", [
    ((1000, 1000), b"\0" * 8, "bytes of data"),                      # byte count does not match the shape
    ((10**9,), b"", "elements"),                                    # size cap, before any allocation
    ((-1, 3), b"", "non-negative"),
    ((True, 3), b"\0" * 24, "non-negative integers"),
    ((2,), [1.0, 2.0], "not raw bytes"),
])
def test_array_records_checked_before_allocation(shape, raw, match):
    data = pickle.dumps(_array_with_state(shape, "f8", raw), protocol=2)
    with pytest.raises(mano_pickle._Refused, match=match):
        pickled_array(restricted_load(data))


def test_sparse_matrix_checked_before_densifying(tmp_path):
    import scipy.sparse

    good = scipy.sparse.csc_matrix(np.eye(4))
    state = good.__dict__.copy()
    state["_shape"] = (10**6, 10**6)            # a 1e12-element dense matrix from a few bytes
    bad = Reduce(type(good), (), state)
    with pytest.raises(mano_pickle._Refused, match="elements"):
        pickled_array(restricted_load(pickle.dumps(bad, protocol=2)))
    state = good.__dict__.copy()
    state["indices"] = np.array([0, 1, 2, 99], np.int32)  # row index outside the matrix
    with pytest.raises(mano_pickle._Refused, match="inconsistent sparse"):
        pickled_array(restricted_load(pickle.dumps(Reduce(type(good), (), state), protocol=2)))


def test_hash_bomb_keys_and_sets_are_refused_quickly():
    """A dict key or set item of nested shared tuples would take 2**60 steps to hash: never hashed."""
    t = (0,)
    for _ in range(60):
        t = (t, t)
    body = pickle.dumps(t, protocol=4)[2:-1]   # builds t (memo references, no hashing); no PROTO, no STOP
    if body[:1] == pickle.FRAME:
        body = body[9:]
    bomb_key = b"\x80\x04}" + body + b"K\x01s."                                  # {t: 1}
    with pytest.raises(mano_pickle._Refused, match="dictionary key"):
        restricted_load(bomb_key)
    bomb_set = b"\x80\x04\x8f(" + body + b"\x90."                                 # {t} (EMPTY_SET, ADDITEMS)
    assert isinstance(restricted_load(bomb_set), mano_pickle._SetStub)              # recorded, never hashed


def test_every_failure_names_the_file(tmp_path):
    cases = {
        "not_a_dict.pkl": pickle.dumps([1, 2, 3], protocol=2),
        "truncated.pkl": pickle.dumps({"a": np.zeros(100)}, protocol=2)[:-40],
        "list_array.pkl": pickle.dumps({"v_template": [[0.0, 0.0, 0.0]] * 778}, protocol=2),
        "nan.pkl": pickle.dumps({"v_template": np.full((778, 3), np.nan), "shapedirs": np.zeros((778, 3, 10)),
                                 "posedirs": np.zeros((778, 3, 135)), "J_regressor": np.zeros((16, 778)),
                                 "weights": np.zeros((778, 16)), "hands_components": np.eye(45),
                                 "hands_mean": np.zeros(45), "kintree_table": kintree(),
                                 "f": np.zeros((1538, 3), np.int64)}, protocol=2),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelFileError, match=name.replace(".", r"\.")):
            load_mano_pkl(tmp_path / name)


def test_oversized_pickle_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(mano_io, "MAX_PICKLE_BYTES", 1000)
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(b"\0" * 2000)
    with pytest.raises(ModelFileError, match="MANO_RIGHT.pkl is 0 MiB"):
        load_mano_pkl(path)


def test_model_npz_bomb_refused_before_decompressing(tmp_path, monkeypatch):
    """A MANO-format .npz whose member decompresses far past the bound is refused from the zip header."""
    monkeypatch.setattr(mano_io, "MAX_NPZ_BYTES", 32 * 2**20)
    path = tmp_path / "bomb.npz"
    npz_bomb(path, {"f": np.zeros((1538, 3), np.int64)}, "v_template", 64 * 2**20)
    with pytest.raises(ModelFileError, match="bomb.npz would decompress to 64 MiB"):
        load_model_npz(path)
