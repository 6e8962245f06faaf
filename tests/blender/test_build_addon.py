"""build_addon.py: what each variant bundles, and the manifest it writes (no downloads here)."""
from __future__ import annotations

import sys
import tomllib

import pytest


@pytest.fixture(scope="module")
def build_addon(repo_dir):
    sys.path.insert(0, str(repo_dir))
    try:
        import build_addon
    finally:
        sys.path.remove(str(repo_dir))
    return build_addon


def test_cpu_variant_uses_the_cpu_torch_and_never_bundles_blenders_numpy(build_addon):
    reqs = build_addon.engine_requirements("cpu", "linux-x64")
    assert "torch==2.13.0+cpu" in reqs
    assert not any(r.lower().startswith("numpy") for r in reqs)
    assert any(r.startswith("mediapipe==") for r in reqs) and any(r.startswith("opencv-contrib-python==") for r in reqs)
    assert "torch==2.13.0" in build_addon.engine_requirements("cuda", "linux-x64")
    assert "torch==2.13.0" in build_addon.engine_requirements("cpu", "windows-x64")  # PyPI's is CPU-only there


def test_manifest_lists_the_platform_and_every_wheel(build_addon):
    names = ["dahyf-0.1.0-py3-none-any.whl", "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"]
    manifest = tomllib.loads(build_addon.manifest_text("linux-x64", names))
    assert manifest["platforms"] == ["linux-x64"]
    assert manifest["wheels"] == [f"./wheels/{n}" for n in names]
    assert manifest["blender_version_min"] == "4.2.0" and manifest["schema_version"] == "1.0.0"
    assert manifest["id"] == "dahyf_blender" and manifest["license"] == ["SPDX:MIT"]
    assert len(manifest["tagline"]) <= 64 and not manifest["tagline"].endswith(".")
