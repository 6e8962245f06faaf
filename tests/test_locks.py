"""The pinned stacks: every tier's lock file pins every package, the running tier's environment is
exactly its lock file, and the extension zip ships the versions the tiers test."""
from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Python (major, minor) -> the lock file of that tier's main environment.
TIER_LOCKS = {(3, 11): "requirements.lock", (3, 13): "requirements-py313.lock"}
ALL_LOCKS = [*TIER_LOCKS.values(), "requirements-bpy42.lock", "requirements-addon.lock"]


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(name: str, python: str | None = None) -> dict[str, str]:
    """{normalised name: version} of a lock file; with ``python`` ('3.11'), only lines whose marker holds there."""
    out = {}
    for raw in (REPO / name).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        spec, _, marker = line.partition(";")
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s=]+)", spec.strip())
        assert m, f"{name}: {raw!r} is not pinned as name==version"
        if python and marker and f'python_version == "{python}"' not in marker:
            continue
        assert norm(m.group(1)) not in out or marker, f"{name}: {m.group(1)} pinned twice"
        out[norm(m.group(1))] = m.group(2)
    return out


@pytest.mark.parametrize("name", ALL_LOCKS)
def test_every_line_of_every_lock_file_is_one_exact_pin(name):
    pins = read_lock(name)
    assert pins
    if name == "requirements-addon.lock":
        assert "numpy" not in pins  # Blender's own


def test_this_environment_is_exactly_its_lock_file():
    lock = TIER_LOCKS.get(sys.version_info[:2])
    if lock is None:
        pytest.skip(f"Python {sys.version_info[0]}.{sys.version_info[1]} is not a DaHyF tier")
    installed = {}
    for dist in importlib.metadata.distributions():
        name = norm(dist.metadata["Name"])
        if name in ("pip", "dahyf"):
            continue
        if name in installed and installed[name] != dist.version:
            pytest.skip(f"two versions of {name} on sys.path (a tier that borrows another venv, e.g. .venv-bpy42)")
        installed[name] = dist.version
    locked = read_lock(lock)
    extra = {n: v for n, v in installed.items() if locked.get(n) != v}
    missing = {n: v for n, v in locked.items() if installed.get(n) != v}
    assert not extra and not missing, (
        f"this environment differs from {lock}: installed but not locked {extra}, locked but not installed "
        f"{missing}. Pin new packages in {lock}; for a stale venv: rm -rf the venv and run make again.")


@pytest.mark.parametrize("python", ["3.11", "3.13"])
def test_the_zip_ships_the_versions_its_tier_tests(python):
    tier = read_lock(TIER_LOCKS[tuple(map(int, python.split(".")))])
    shipped = read_lock("requirements-addon.lock", python)
    # the zip's OpenCV is the headless build of the tier's OpenCV (same version, no GUI)
    assert shipped.pop("opencv-python-headless") == tier["opencv-contrib-python"]
    assert {n: tier.get(n) for n in shipped} == shipped
    assert "mediapipe" in shipped and not {"torch", "numpy", "jax", "jaxlib", "scipy", "sounddevice"} & set(shipped)


def test_pyproject_pins_agree_with_the_lock_files():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [d for group in project.get("optional-dependencies", {}).values() for d in group]
    # the 3.11 tier installs every extra (torch, smplx, safetensors); the 3.13 tier the runtime only
    for python, lock, deps in (("3.11", "requirements.lock", project["dependencies"] + extras),
                               ("3.13", "requirements-py313.lock", project["dependencies"])):
        locked = read_lock(lock)
        for dep in deps:
            spec, _, marker = dep.partition(";")
            m = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", spec.strip())
            if not m or (marker and not _marker_holds(marker, python)):
                continue
            assert locked.get(norm(m.group(1)), "").split("+")[0] == m.group(2), (lock, dep)


def _marker_holds(marker: str, python: str) -> bool:
    from packaging.markers import Marker

    return Marker(marker).evaluate({"python_version": python})
