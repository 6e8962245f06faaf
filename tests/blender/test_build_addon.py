"""build_addon.py: what each tier and variant ships, the manifest's Blender range, the folder it
leaves out, and a Blender outside the range refused at install and at register (no downloads here)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def test_tiers_cover_blender_4_2_onwards_without_gap_or_overlap(build_addon, sub):
    py311, py313 = build_addon.TIERS["py311"], build_addon.TIERS["py313"]
    assert py311.python == (3, 11) and py313.python == (3, 13)
    assert py311.blender_min == sub("compat").MIN_VERSION == (4, 2, 0)
    assert py311.blender_max == py313.blender_min == (5, 1, 0) and py313.blender_max is None


@pytest.mark.parametrize("platform", ["linux-x64", "windows-x64", "macos-arm64"])
def test_cpu_zips_ship_mediapipe_of_their_tier_and_no_torch_numpy_or_unused_dependencies(build_addon, platform):
    names = {}
    for tier in ("py311", "py313"):
        reqs = build_addon.shipped_requirements(build_addon.TIERS[tier], platform)
        names[tier] = {r.split("==")[0]: r.split("==")[1] for r in reqs}
        assert not {"torch", "numpy", "jax", "jaxlib", "scipy", "sounddevice", "sentencepiece",
                    "opencv-contrib-python", "opencv-python"} & set(names[tier])
        assert names[tier]["opencv-python-headless"] == "4.11.0.86"
    assert names["py311"]["mediapipe"] == "0.10.21" and names["py311"]["protobuf"] == "4.25.9"
    assert names["py313"]["mediapipe"] == "1.2.3" and "protobuf" not in names["py313"]


def test_manifest_carries_the_tiers_blender_range_platform_and_every_wheel(build_addon):
    names = ["dahyf-0.1.0-py3-none-any.whl", "mediapipe-1.2.3-py3-none-win_amd64.whl"]
    m311 = tomllib.loads(build_addon.manifest_text(build_addon.TIERS["py311"], "linux-x64", names))
    m313 = tomllib.loads(build_addon.manifest_text(build_addon.TIERS["py313"], "windows-x64", names))
    assert (m311["blender_version_min"], m311["blender_version_max"]) == ("4.2.0", "5.1.0")
    assert m313["blender_version_min"] == "5.1.0" and "blender_version_max" not in m313
    assert m311["platforms"] == ["linux-x64"] and m313["platforms"] == ["windows-x64"]
    assert m313["wheels"] == [f"./wheels/{n}" for n in names]
    assert m311["id"] == "dahyf_blender" and m311["license"] == ["SPDX:MIT"] and m311["schema_version"] == "1.0.0"
    assert len(m311["tagline"]) <= 64 and not m311["tagline"].endswith(".")


def test_zip_names_say_tier_platform_and_variant(build_addon):
    t = build_addon.TIERS["py313"]
    assert build_addon.zip_name("0.1.0", t, "macos-arm64", "cpu") == "dahyf_blender-0.1.0-py313-macos-arm64.zip"
    assert build_addon.zip_name("0.1.0", t, "linux-x64", "cuda") == "dahyf_blender-0.1.0-py313-linux-x64-cuda.zip"


def test_devtools_folder_is_left_out_of_the_zip(build_addon, tmp_path, monkeypatch):
    addon = tmp_path / "dahyf_blender"
    shutil.copytree(build_addon.ADDON_DIR, addon, ignore=shutil.ignore_patterns("__pycache__"))
    (addon / "devtools").mkdir(exist_ok=True)
    (addon / "devtools" / "a_new_dev_script.py").write_text("print('dev only')\n")
    monkeypatch.setattr(build_addon, "ADDON_DIR", addon)
    shipped = [p.relative_to(addon).as_posix() for p in build_addon.addon_files()]
    assert "__init__.py" in shipped and "build_info.py" in shipped
    assert not [s for s in shipped if s.startswith("devtools/")]


def test_local_zip_says_what_it_was_built_for(addon_zip, build_addon):
    with zipfile.ZipFile(addon_zip) as zf:
        names = zf.namelist()
        info = zf.read("build_info.py").decode()
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    tier = build_addon.host_tier()
    ns: dict = {}
    exec(info, ns)
    assert (ns["TIER"], ns["PYTHON"], ns["BLENDER_MIN"], ns["BLENDER_MAX"], ns["VARIANT"]) == (
        tier.name, tier.python, tier.blender_min, tier.blender_max, "local")
    assert manifest["blender_version_min"] == ".".join(map(str, tier.blender_min))
    assert not [n for n in names if n.startswith("devtools/") or "__pycache__" in n]


def test_register_refuses_a_blender_or_python_outside_the_zips_tier(sub):
    compat, built = sub("compat"), sub("build_info")
    assert built.TIER in ("py311", "py313")  # the installed extension comes from a built zip
    compat.check_blender_version()
    if built.TIER == "py311":
        with pytest.raises(compat.UnsupportedBlender, match=r"\(py311\) is for Blender 4\.2\.0 to 5\.1\.0 \(excluded\)"
                           r".*install the DaHyF zip made for Python 3\.13: dahyf_blender-<version>-py313-"):
            compat.check_blender_version((5, 3, 0), (3, 13))
        with pytest.raises(compat.UnsupportedBlender, match="Blender 5.1.0 with Python 3.11"):
            compat.check_blender_version((5, 1, 0), (3, 11))
    else:
        with pytest.raises(compat.UnsupportedBlender, match=r"\(py313\) is for Blender 5\.1\.0 and newer"
                           r".*made for Python 3\.11: dahyf_blender-<version>-py311-"):
            compat.check_blender_version((5, 0, 1), (3, 11))
        with pytest.raises(compat.UnsupportedBlender, match="Blender 5.3.0 with Python 3.12"):
            compat.check_blender_version((5, 3, 0), (3, 12))


def run_bare_blender(tmp_path, zip_path, *extra) -> tuple[dict, str]:
    """Run tests/blender/bare_blender.py: this bpy and its numpy only. Returns (result, output)."""
    import importlib.util

    sys.path.insert(0, str(HERE))
    try:
        from bare_blender import bare_modules
    finally:
        sys.path.remove(str(HERE))
    modules = bare_modules(tmp_path / "bare", [importlib.util.find_spec("bpy").origin,
                                               importlib.util.find_spec("numpy").origin])
    proc = subprocess.run([sys.executable, "-I", "-S", str(HERE / "bare_blender.py"), "--modules", str(modules),
                           "--zip", str(zip_path), *extra], capture_output=True, text=True, timeout=900,
                          env={"BLENDER_USER_RESOURCES": str(tmp_path / "profile"), "PATH": "/usr/bin:/bin"})
    output = proc.stdout + proc.stderr
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BARE_BLENDER_RESULT ")), None)
    assert line, f"bare Blender gave no result (exit {proc.returncode}):\n{output[-3000:]}"
    return json.loads(line.split(" ", 1)[1]), output


def test_blender_refuses_at_install_a_zip_of_the_other_tier(addon_zip, build_addon, tmp_path):
    here = build_addon.host_tier()
    other = next(t for t in build_addon.TIERS.values() if t is not here)
    wrong = tmp_path / f"dahyf_blender-{other.name}.zip"
    with zipfile.ZipFile(addon_zip) as src, zipfile.ZipFile(wrong, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "blender_manifest.toml":
                wheels = tomllib.loads(data.decode())["wheels"]
                data = build_addon.manifest_text(other, build_addon.host_platform(),
                                                 [w.rsplit("/", 1)[1] for w in wheels]).encode()
            dst.writestr(item, data)
    result, output = run_bare_blender(tmp_path, wrong)
    assert not result["enabled"]
    bound = "minimum" if other.name == "py313" else "maximum"
    assert re.search(bound + r"[a-z ]* version \(5\.1\.0\)", output), output[-2000:]


def _fake_wheel(folder, name, version, requires=()):
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}-{version}.dist-info/METADATA", "Metadata-Version: 2.1\nName: " + name + "\nVersion: "
                    + version + "\n" + "".join(f"Requires-Dist: {r}\n" for r in requires))
    return path


def test_cuda_variant_follows_torchs_dependencies_with_the_target_platforms_markers(build_addon, tmp_path, monkeypatch):
    # Offline: the cache already holds torch and what Linux needs; pip is never called, so the
    # closure and the markers are checked without the several-GB download.
    tier = build_addon.TIERS["py313"]
    cpu_cache, torch_cache = tmp_path / "py313-linux-x64", tmp_path / "py313-linux-x64-cuda-torch"
    cpu_cache.mkdir()
    torch_cache.mkdir()
    for req in build_addon.shipped_requirements(tier, "linux-x64"):
        name, version = req.split("==")
        _fake_wheel(cpu_cache, name.replace("-", "_"), version)
    _fake_wheel(torch_cache, "torch", "2.13.0", ['nvidia_cublas_cu12==12.8.4.1; platform_system == "Linux"',
                                                 'colorama; platform_system == "Windows"',
                                                 'numpy; extra == "opt"', "filelock"])
    _fake_wheel(torch_cache, "nvidia_cublas_cu12", "12.8.4.1")
    _fake_wheel(torch_cache, "filelock", "3.20.0")
    calls = []
    real = build_addon.pip_download
    monkeypatch.setattr(build_addon, "pip_download", lambda reqs, *a, **k: calls.append(reqs) or real(reqs, *a, **k))
    monkeypatch.setattr(build_addon.subprocess, "run", lambda *a, **k: pytest.fail(f"pip was run: {a}"))
    wheels = build_addon.dependency_wheels("cuda", tier, "linux-x64", tmp_path)
    names = sorted(w.name.split("-")[0] for w in wheels)
    assert {"torch", "nvidia_cublas_cu12", "filelock", "mediapipe"} <= set(names) and "colorama" not in names
    assert calls[-1] == [build_addon.CUDA_TORCH]  # every later step found its wheels in the cache
