"""Shared pytest fixtures: paths to the repo and to ../shared (internal test media, may be absent)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only internal test media (../shared); tests skip when it is absent (a user's clone)."""
    if not (SHARED / "media").is_dir():
        pytest.skip(f"internal test media not found at {SHARED} (only present on the team's machines and CI)")
    return SHARED


@pytest.fixture(scope="session")
def shared_video(shared_dir: Path) -> Path:
    path = shared_dir / "media" / "videos" / "dynhamr_demo3.mp4"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return path


@pytest.fixture(scope="module")
def estimator():
    """The bundled default engine (landmark variant)."""
    from dahyf.net.checkpoint import load_checkpoint

    return load_checkpoint()


@pytest.fixture(scope="module")
def sampler():
    """Synthetic right hands with the calibrated landmark noise and world landmarks (drawn with torch:
    dahyf.train)."""
    pytest.importorskip("torch", reason="synthetic hands (dahyf.train.synthetic) are drawn with torch")
    from dahyf.hand import load_hand_model
    from dahyf.train import synthetic as S
    from dahyf.train.noise_calibration import load_noise_model, load_rendered_calibration

    return S.SyntheticHands(load_hand_model("open", "right"), load_noise_model(), load_rendered_calibration()["world"])


def pytest_configure(config):
    # Keep Blender (bpy) from touching a real user profile in every test process.
    import tempfile

    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="dahyf-blender-user-"))


# --- image network (issue 16): a stand-in for the licence-gated MANO file -----------------------------
def write_mano_like(path: Path) -> Path:
    """A MANO-format .npz with MANO's 778 vertices, a non-zero ``hands_mean`` and no fingertip ids (so the
    loader treats it as MANO): 778 vertices of the open hand model with their skinning, joints regressed
    from their nearest vertices. Not anatomical MANO; enough to test label conventions end to end."""
    import numpy as np

    from dahyf.assets import open_hand_file
    from dahyf.hand.mano_io import load_model_npz

    a, _ = load_model_npz(open_hand_file("right"))
    V = a["v_template"].shape[0]
    ids = np.unique(np.linspace(0, V - 1, 778).round().astype(np.int64))
    assert len(ids) == 778
    v = a["v_template"][ids]
    joints = a["J_regressor"] @ a["v_template"]
    reg = np.zeros((16, 778))
    for j, p in enumerate(joints):
        near = np.argsort(np.linalg.norm(v - p, axis=1))[:4]
        w = 1.0 / (np.linalg.norm(v[near] - p, axis=1) + 1e-6)
        reg[j, near] = w / w.sum()
    remap = -np.ones(V, np.int64)
    remap[ids] = np.arange(778)
    faces = remap[a["f"]]
    faces = faces[(faces >= 0).all(1)]
    np.savez(path, v_template=v, shapedirs=a["shapedirs"][ids], posedirs=a["posedirs"][ids], J_regressor=reg,
             weights=a["weights"][ids], kintree_table=a["kintree_table"], f=faces if len(faces) else np.array([[0, 1, 2]]),
             hands_components=a["hands_components"], hands_mean=0.1 * np.sin(np.arange(45.0)))
    return path


@pytest.fixture(scope="session")
def mano_like(tmp_path_factory) -> Path:
    """Path of a 778-vertex MANO-format .npz (see :func:`write_mano_like`)."""
    return write_mano_like(tmp_path_factory.mktemp("mano") / "MANO_RIGHT_like.npz")


# --- Python tiers (DESIGN.md §6) -------------------------------------------------------------------
# The Python 3.13 tier has no torch (no CPU wheel for 3.13). A test that needs torch says so: a
# whole module with ``torch = pytest.importorskip("torch")``, one test with ``@pytest.mark.needs_torch``
# (skipped here when torch is not installed). Nothing else is turned into a skip: a test that is not
# marked and stops on a missing torch fails, so an accidental torch import in runtime code shows in
# the 3.13 tier. What must run without torch is also checked with torch blocked in a subprocess
# (tests/test_runtime.py).
import importlib.util  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
NO_TORCH_REASON = "needs torch, which this Python tier does not install (no CPU wheel for Python 3.13)"


def pytest_collection_modifyitems(config, items):
    if HAS_TORCH:
        return
    skip = pytest.mark.skip(reason=NO_TORCH_REASON)
    for item in items:
        if item.get_closest_marker("needs_torch") is not None:
            item.add_marker(skip)


@pytest.fixture(params=["numpy", pytest.param("torch", marks=pytest.mark.needs_torch)])
def as_backend(request):
    """A test written once for both array backends (``dahyf.backend``): ``as_backend(a)`` is the numpy
    array ``a`` itself, or the same values as a torch tensor (that case needs torch). Results of either
    compare with numpy (``np.asarray`` of a CPU tensor)."""
    if request.param == "numpy":
        return np.asarray
    import torch

    return torch.as_tensor
