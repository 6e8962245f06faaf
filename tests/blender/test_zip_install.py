"""The real extension zip of this Python tier, installed offline into a bare Blender, captures.

The cpu zip for Linux is built for the running tier (py311 under bpy 4.2 and 5.0, py313 under bpy
5.3; its wheels are downloaded once into build/wheels/), then installed with
``bpy.ops.extensions.package_install_files`` into a Blender process that has only ``bpy`` and
Blender's numpy (tests/blender/bare_blender.py), and ``capture_video('EXEC_DEFAULT', ...)`` keys
30 frames of the bundled sample. Every wheel of the zip must be imported by that capture.
"""
from __future__ import annotations

import zipfile

import pytest

from test_build_addon import run_bare_blender

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cpu_zip(tmp_path_factory, build_addon):
    return build_addon, build_addon.build(tmp_path_factory.mktemp("dist"), variant="cpu")


def test_zip_installs_into_a_bare_blender_and_captures_the_sample(cpu_zip, tmp_path):
    from dahyf import sample_video as sv

    build_addon, zip_path = cpu_zip
    tier = build_addon.host_tier()
    assert zip_path.stat().st_size <= 150 * 2**20
    result, output = run_bare_blender(tmp_path, zip_path, "--video", str(sv.SAMPLE_VIDEO), "--frames", "30")
    assert result["enabled"], output[-3000:]
    assert "capture_error" not in result, result["capture_error"]
    assert result["armatures"] and set(range(1, 31)) <= set(result["keyed_frames"]), result
    assert not result["torch_loaded"]
    pins = dict(r.split("==") for r in build_addon.shipped_requirements(tier))
    assert result["mediapipe"] == pins["mediapipe"]
    # nothing ships that the capture does not import: each wheel's top-level package was loaded
    with zipfile.ZipFile(zip_path) as zf:
        wheels = [n for n in zf.namelist() if n.startswith("wheels/")]
        for name in wheels:
            with zf.open(name) as f, zipfile.ZipFile(f) as whl:
                tops = {p.split("/")[0].removesuffix(".py") for p in whl.namelist()
                        if not p.split("/")[0].endswith((".dist-info", ".data", ".libs"))}
            assert tops & set(result["loaded_from_extension"]), f"{name} ships but is never imported"
