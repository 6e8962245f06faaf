"""Shared pytest fixtures: paths to the repo and to ../shared (internal test media, may be absent)."""
from __future__ import annotations

import os
from pathlib import Path

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
    """Synthetic right hands with the calibrated landmark noise."""
    from dahyf.hand import load_hand_model
    from dahyf.train import synthetic as S
    from dahyf.train.noise_calibration import load_noise_model

    return S.SyntheticHands(load_hand_model("open", "right"), load_noise_model())


def pytest_configure(config):
    # Keep Blender (bpy) from touching a real user profile in every test process.
    import tempfile

    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="dahyf-blender-user-"))
