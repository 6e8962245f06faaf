"""The MANO hand layer: agreement with smplx.MANO, the restricted unpickler, mirroring, package hygiene."""
from __future__ import annotations

import pickle
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from dahyf.hand import kinematics as K
from dahyf.hand import quaternion as Q
from dahyf.hand.mano_io import ModelFileError, load_mano_pkl
from dahyf.hand.mirror import mirror_model_arrays, mirror_points, mirror_pose
from dahyf.hand.model import HandModel, load_hand_model
from dahyf.hand.tables import (
    KEYPOINT_CONVENTIONS, KEYPOINT_NAMES, KEYPOINT_SOURCES, MANO_TIP_VERTEX_IDS, NUM_JOINTS, PARENTS,
)

V, F = 778, 1538


def random_mano_arrays(seed: int) -> dict[str, np.ndarray]:
    """Valid random arrays with the 9 MANO keys (a hand-sized blob, normalised regressors/weights)."""
    rng = np.random.default_rng(seed)
    J_regressor = rng.random((16, V)) ** 8
    weights = rng.random((V, 16)) ** 4
    return dict(
        v_template=rng.normal(size=(V, 3)) * 0.04,
        shapedirs=rng.normal(size=(V, 3, 10)) * 2e-3,
        posedirs=rng.normal(size=(V, 3, 135)) * 2e-3,
        J_regressor=J_regressor / J_regressor.sum(1, keepdims=True),
        weights=weights / weights.sum(1, keepdims=True),
        kintree_table=np.array([[2**32 - 1] + list(PARENTS[1:]), list(range(16))], dtype=np.int64),
        f=rng.integers(0, V, size=(F, 3)).astype(np.uint32),
        hands_components=rng.normal(size=(45, 45)),
        hands_mean=rng.normal(size=45) * 0.1,
    )


class _ChumpyLike:
    """Pickles like a chumpy ``Ch`` object: global ``chumpy.ch.Ch`` with the array in state['x']."""

    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()


def write_chumpy_pickle(path: Path, arrays: dict[str, np.ndarray], protocol: int) -> None:
    """Write a MANO-like pickle: chumpy objects for v_template/shapedirs/posedirs/weights, a csc J_regressor."""
    module = types.ModuleType("chumpy.ch")
    _ChumpyLike.__module__, _ChumpyLike.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = _ChumpyLike
    sys.modules["chumpy"] = types.ModuleType("chumpy")
    sys.modules["chumpy.ch"] = module
    try:
        data = dict(arrays, bs_style="lbs", bs_type="lrotmin")
        for key in ("v_template", "shapedirs", "posedirs", "weights"):
            data[key] = _ChumpyLike(arrays[key])
        data["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
        path.write_bytes(pickle.dumps(data, protocol=protocol))
    finally:
        del sys.modules["chumpy.ch"], sys.modules["chumpy"]


@pytest.fixture(scope="module")
def mano_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mano")
    write_chumpy_pickle(folder / "MANO_RIGHT.pkl", random_mano_arrays(1), protocol=2)
    write_chumpy_pickle(folder / "MANO_LEFT.pkl", random_mano_arrays(2), protocol=0)
    return folder


@pytest.mark.needs_torch
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fk_and_lbs_equal_smplx_mano(mano_folder, side, dtype):
    import torch

    smplx = pytest.importorskip("smplx")
    dtype = getattr(torch, dtype)
    arrays = load_mano_pkl(mano_folder / f"MANO_{side.upper()}.pkl")
    ours = load_hand_model(mano_folder, side=side)
    ref = smplx.MANO(
        str(mano_folder), is_rhand=side == "right", use_pca=False, flat_hand_mean=True,
        data_struct=types.SimpleNamespace(**arrays), num_betas=10,
    ).to(dtype)
    g = torch.Generator().manual_seed(3)
    B = 8
    pose = torch.randn(B, 16, 3, generator=g, dtype=dtype) * 0.8
    betas = torch.randn(B, 10, generator=g, dtype=dtype) * 2
    transl = torch.randn(B, 3, generator=g, dtype=dtype) * 0.3
    want = ref(global_orient=pose[:, 0], hand_pose=pose[:, 1:].reshape(B, 45), betas=betas, transl=transl)
    got = ours(pose, betas, transl)
    tol = 1e-5 if dtype == torch.float32 else 1e-8
    assert got.vertices.dtype == dtype
    # the numpy path (the capture runtime) is the same forward
    got_np = ours(pose.numpy(), betas.numpy(), transl.numpy())
    assert isinstance(got_np.vertices, np.ndarray) and got_np.vertices.dtype == pose.numpy().dtype
    assert np.abs(got_np.vertices - want.vertices.numpy()).max() < tol
    assert np.abs(got_np.keypoints - got.keypoints.numpy()).max() < tol
    assert (got.vertices - want.vertices).abs().max() < tol
    assert (got.joints - want.joints[:, :16]).abs().max() < tol
    tips = want.vertices[:, list(MANO_TIP_VERTEX_IDS)]
    expect_kp = torch.cat([want.joints[:, :16], tips], 1)[:, list(KEYPOINT_SOURCES)]
    assert (got.keypoints - expect_kp).abs().max() < tol
    assert got.keypoints.shape == (B, 21, 3) and len(KEYPOINT_NAMES) == 21


def test_restricted_unpickler_reads_chumpy_and_sparse(mano_folder):
    arrays = load_mano_pkl(mano_folder / "MANO_RIGHT.pkl")
    want = random_mano_arrays(1)
    for key in want:
        np.testing.assert_allclose(arrays[key][..., :] if key != "kintree_table" else arrays[key][1], 
                                   want[key] if key != "kintree_table" else want[key][1])


def test_restricted_unpickler_refuses_code_execution(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "MANO_RIGHT.pkl"
    bad.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    with pytest.raises(ModelFileError, match="refused to load global"):
        load_mano_pkl(bad)
    assert not marker.exists(), "the pickle payload ran"
    with pytest.raises(ModelFileError, match="refused"):
        load_hand_model(tmp_path, side="right")


def test_wrong_mano_file_gives_clear_errors(tmp_path):
    with pytest.raises(ModelFileError, match="hand model not found: .*MANO_RIGHT.pkl / MANO_LEFT.pkl"):
        load_hand_model(tmp_path / "typo", side="right")           # a folder that does not exist
    with pytest.raises(ModelFileError, match="no MANO_RIGHT.pkl"):
        load_hand_model(tmp_path, side="right")
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(b"this is not a pickle")
    with pytest.raises(ModelFileError, match="not a readable MANO pickle"):
        load_hand_model(tmp_path)
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(pickle.dumps({"v_template": np.zeros((10, 3))}))
    with pytest.raises(ModelFileError, match="missing"):
        load_hand_model(tmp_path)


def test_mirror_pose_twice_is_identity(as_backend):
    pose = as_backend(np.random.default_rng(1).normal(size=(5, 16, 3)))
    np.testing.assert_array_equal(np.asarray(mirror_pose(mirror_pose(pose))), np.asarray(pose))
    pts = np.random.default_rng(0).normal(size=(5, 21, 3))
    np.testing.assert_array_equal(mirror_points(mirror_points(pts)), pts)


def test_mirror_pose_is_conjugation_by_the_reflection(as_backend):
    pose = as_backend(np.random.default_rng(2).normal(size=(64, 3)))
    M = np.diag([-1.0, 1.0, 1.0])
    want = M @ np.asarray(K.batch_rodrigues(pose)) @ M
    np.testing.assert_allclose(np.asarray(K.batch_rodrigues(mirror_pose(pose))), want, atol=1e-12)


def test_mirrored_pose_on_left_model_gives_mirror_image(as_backend):
    arrays = random_mano_arrays(7)
    right = HandModel(arrays, MANO_TIP_VERTEX_IDS, "right")
    left = HandModel(mirror_model_arrays(arrays), MANO_TIP_VERTEX_IDS, "left")
    rng = np.random.default_rng(0)
    pose, betas, transl = (as_backend(rng.normal(size=s)) for s in [(6, 16, 3), (6, 10), (6, 3)])
    r = right(pose, betas, transl)
    l = left(mirror_pose(pose), betas, mirror_points(transl))
    np.testing.assert_allclose(np.asarray(l.joints), np.asarray(mirror_points(r.joints)), atol=1e-8)
    np.testing.assert_allclose(np.asarray(l.vertices), np.asarray(mirror_points(r.vertices)), atol=1e-8)


def test_mirror_model_arrays_twice_is_identity():
    arrays = random_mano_arrays(4)
    back = mirror_model_arrays(mirror_model_arrays(arrays))
    for key in arrays:
        np.testing.assert_array_equal(back[key], arrays[key])


def test_rotation_conversions_round_trip(as_backend):
    rng = np.random.default_rng(1)
    aa = rng.normal(size=(200, 3))
    aa = aa / np.linalg.norm(aa, axis=-1, keepdims=True) * rng.random((200, 1)) * 3.1
    R = K.batch_rodrigues(as_backend(aa))
    np.testing.assert_allclose(np.asarray(K.matrix_to_axis_angle(R)), aa, atol=1e-7)
    q = Q.from_axis_angle(as_backend(aa))
    np.testing.assert_allclose(np.asarray(K.batch_rodrigues(Q.to_axis_angle(q))), np.asarray(R), atol=1e-9)
    np.testing.assert_allclose(np.abs(np.asarray(Q.from_matrix(R))), np.abs(np.asarray(q)), atol=1e-9)


@pytest.mark.needs_torch
@pytest.mark.cuda
def test_hand_model_runs_on_cuda():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")
    arrays = random_mano_arrays(5)
    hand = HandModel(arrays, MANO_TIP_VERTEX_IDS, "right")
    pose = torch.randn(4, 16, 3, dtype=torch.float64)
    cpu = hand(pose)
    gpu = hand(pose.cuda())
    assert torch.allclose(gpu.vertices.cpu(), cpu.vertices, atol=1e-9)


def test_engine_never_imports_blender(repo_dir):
    pattern = re.compile(r"^\s*(import|from)\s+(bpy|mathutils)\b", re.M)
    offenders = [str(p) for p in (repo_dir / "engine").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_cli_help_via_module_and_console_script(repo_dir):
    by_module = subprocess.run([sys.executable, "-m", "dahyf", "--help"], capture_output=True, text=True)
    assert by_module.returncode == 0 and "usage: dahyf" in by_module.stdout
    script = Path(sys.executable).with_name("dahyf")
    by_script = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert by_script.returncode == 0 and by_script.stdout == by_module.stdout


@pytest.mark.needs_torch
def test_rotations_agree_between_numpy_and_torch():
    import torch

    rng = np.random.default_rng(2)
    aa = rng.normal(size=(100, 3)) * 1.5
    aa[0] = 0.0
    v = rng.normal(size=(100, 3))
    q = Q.from_axis_angle(aa)
    np.testing.assert_allclose(q, Q.from_axis_angle(torch.tensor(aa)).numpy(), atol=1e-12)
    R = K.batch_rodrigues(torch.tensor(aa)).numpy()
    np.testing.assert_allclose(K.batch_rodrigues(aa), R, atol=1e-12)
    np.testing.assert_allclose(Q.from_matrix(R), Q.from_matrix(torch.tensor(R)).numpy(), atol=1e-12)
    np.testing.assert_allclose(Q.rotate(q, v), (R @ v[..., None])[..., 0], atol=1e-12)
    np.testing.assert_allclose(Q.multiply(q, Q.conjugate(q)), np.tile([1.0, 0, 0, 0], (100, 1)), atol=1e-12)
    back = Q.to_axis_angle(q)
    np.testing.assert_allclose(K.batch_rodrigues(torch.tensor(back)).numpy(), R, atol=1e-10)


@pytest.mark.parametrize("fmt", ["csc", "csr"])
def test_restricted_unpickler_densifies_sparse_matrices(fmt):
    from dahyf.hand.mano_pickle import restricted_load

    a = np.random.default_rng(0).random((5, 7))
    a[a < 0.5] = 0
    sparse = getattr(scipy.sparse, f"{fmt}_matrix")(a)
    np.testing.assert_array_equal(restricted_load(pickle.dumps({"J": sparse}, protocol=2))["J"].to_numpy(), a)


@pytest.mark.parametrize("side", ["right", "left"])
def test_hand_model_takes_an_empty_batch(side):
    # e.g. `hand(track.pose, track.betas, track.transl)` for a take's track with no rows
    hand = load_hand_model("open", side)
    out = hand(np.zeros((0, 16, 3), np.float32), np.zeros((0, 10), np.float32), np.zeros((0, 3), np.float32))
    assert out.vertices.shape == (0, hand.num_vertices, 3) and out.keypoints.shape == (0, 21, 3)
    assert K.pose_feature(np.zeros((0, 16, 3, 3))).shape == (0, 135)


def test_the_convention_table_holds_the_official_fingertips():
    # FreiHAND utils/mano_utils.py kpId2vertices; HO3D setup_mano.py's patched lbs.py; smplx / HaMeR
    assert KEYPOINT_CONVENTIONS["freihand"].tip_vertex_ids == (744, 320, 443, 555, 672)
    assert KEYPOINT_CONVENTIONS["ho3d"].tip_vertex_ids == (744, 333, 444, 555, 672)
    assert KEYPOINT_CONVENTIONS["mano"].tip_vertex_ids == (744, 320, 443, 554, 671)
    assert not KEYPOINT_CONVENTIONS["freihand"].flat_hand_mean and KEYPOINT_CONVENTIONS["ho3d"].flat_hand_mean
    assert KEYPOINT_CONVENTIONS["ho3d"].axes == "opengl" and KEYPOINT_CONVENTIONS["freihand"].axes == "opencv"
