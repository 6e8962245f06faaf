#!/usr/bin/env python3
"""Build the installable Blender extension: ``DIR/dahyf_blender-<version>-<platform>.zip``.

The zip holds the extension manifest, the add-on (``dahyf_blender/``), the engine built as a
wheel from ``pyproject.toml``, and every dependency wheel for the platform, so that
*Install from Disk* in Blender needs no network.

Variants
--------
cpu    (default) CPU torch. Linux x64: the local ``torch-2.13.0+cpu`` wheel (pip ``find-links``,
       e.g. /opt/wheels) because the PyTorch CPU index is not reachable from the build machine;
       Windows x64 and macOS arm64: PyPI's torch, which is CPU-only there.
cuda   PyPI's torch for Linux x64 (CUDA 12 build with its nvidia-* wheels; several GB).
local  Only the engine wheel; its dependencies come from the Python that runs Blender (a venv
       with the ``bpy`` module, or a Blender whose Python already has them). For tests and
       development: it installs through the same extension machinery in seconds.

numpy is not bundled: Blender ships its own numpy, imported before any extension loads, so a
second copy in the extension could never be used.

Usage::

    python build_addon.py [--out dist] [--variant cpu|cuda|local] [--platform linux-x64]
                          [--wheel-cache build/wheels]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import platform as _platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent
ADDON_DIR = REPO / "dahyf_blender"
MANIFEST = REPO / "blender_manifest.toml"

#: Blender platform id -> pip --platform tags (newest first).
PIP_PLATFORMS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64"),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx_14_0_arm64", "macosx_13_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"),
}
#: Python of Blender 4.2 – 5.0.
PYTHON_VERSION = "3.11"
#: Environment markers of each platform (pip evaluates markers for the *build* machine, so for
#: another platform the dependency closure is resolved here with these).
MARKER_ENV: dict[str, dict[str, str]] = {
    "linux-x64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix"},
    "windows-x64": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64", "os_name": "nt"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64", "os_name": "posix"},
}
#: Provided by Blender itself; never bundled.
BLENDER_PROVIDED = ("numpy",)


#: Repository tools that live beside the add-on but are not part of the extension (file or folder names).
DEV_ONLY = {"devtools", "bench_keying.py"}

def engine_requirements(variant: str, platform: str) -> list[str]:
    """The pinned runtime requirements of the engine (pyproject.toml), adapted to the variant."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    out = []
    for req in deps:
        name = req.split("=")[0].split("<")[0].split(">")[0].strip().lower()
        if name in BLENDER_PROVIDED:
            continue
        if name == "torch" and variant == "cpu" and platform == "linux-x64":
            req = req.replace("==2.13.0", "==2.13.0+cpu")
        out.append(req)
    return out


def host_platform() -> str:
    system, machine = sys.platform, _platform.machine().lower()
    if system.startswith("linux") and machine in ("x86_64", "amd64"):
        return "linux-x64"
    if system == "win32":
        return "windows-x64"
    if system == "darwin" and machine in ("arm64", "aarch64"):
        return "macos-arm64"
    raise SystemExit(f"unsupported build host {system}/{machine}: pass --platform")


def build_engine_wheel(dest: Path) -> Path:
    """``pip wheel --no-deps`` of the engine, built from a clean copy (no build/ left in the repo)."""
    with tempfile.TemporaryDirectory(prefix="dahyf-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, src / name)
        shutil.copytree(REPO / "engine", src / "engine", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(dest), str(src)], check=True)
    wheels = sorted(dest.glob("dahyf-*.whl"))
    if not wheels:
        raise SystemExit("building the engine wheel produced no dahyf-*.whl")
    return wheels[-1]


def _pip_download(requirements: list[str], platform: str, cache: Path, no_deps: bool = False) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--python-version", PYTHON_VERSION,
           "--implementation", "cp", "--abi", "cp311", "--abi", "abi3", "--abi", "none", "-d", str(cache)]
    for tag in PIP_PLATFORMS[platform] + ("any",):
        cmd += ["--platform", tag]
    subprocess.run(cmd + (["--no-deps"] if no_deps else []) + requirements, check=True)


def _dist_name(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _wheel_requirements(wheel: Path, env: dict[str, str]) -> list:
    """Requires-Dist of a wheel whose markers hold in ``env`` (no extras)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip always carries it
        from pip._vendor.packaging.requirements import Requirement
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode("utf8", "replace").splitlines()
    out = []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        if req.marker is None or req.marker.evaluate(dict(env, extra="")):
            out.append(req)
    return out


def _download_foreign(requirements: list[str], platform: str, cache: Path) -> None:
    """Download the requirements with their dependencies for a platform other than this machine.

    pip evaluates environment markers for the machine it runs on, so torch (whose Linux-only
    CUDA dependencies are marked ``platform_system == "Linux"``) is fetched with ``--no-deps``
    and its dependencies are read from its metadata with the *target's* markers. Everything
    else goes through pip's resolver, with Blender's numpy pinned so that the versions chosen
    work with it.
    """
    env = dict(MARKER_ENV[platform], python_version=PYTHON_VERSION, python_full_version=PYTHON_VERSION + ".0",
               implementation_name="cpython", platform_python_implementation="CPython")
    torch = [r for r in requirements if _dist_name(r.split("=")[0]) == "torch"]
    rest = [r for r in requirements if r not in torch] + blender_provided_pins()
    if torch:
        _pip_download(torch, platform, cache, no_deps=True)
        wheel = next(cache.glob("torch-*.whl"))
        rest += [str(req) for req in _wheel_requirements(wheel, env)]
    _pip_download(rest, platform, cache)
    for _ in range(5):  # dependencies that only the target's markers select (e.g. colorama on Windows)
        have = {_dist_name(w.name.split("-")[0]) for w in cache.glob("*.whl")}
        missing = sorted({f"{req.name}{req.specifier}" for w in cache.glob("*.whl") for req in _wheel_requirements(w, env)
                          if _dist_name(req.name) not in have and _dist_name(req.name) not in BLENDER_PROVIDED})
        if not missing:
            return
        _pip_download(missing + blender_provided_pins(), platform, cache)
    raise SystemExit(f"could not complete the dependencies for {platform}: {', '.join(missing)}")


def blender_provided_pins() -> list[str]:
    """The project's pins of the modules Blender provides (e.g. numpy==1.26.4), as constraints."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return [d for d in deps if _dist_name(d.split("=")[0].split("<")[0].split(">")[0].strip()) in BLENDER_PROVIDED]


def download_dependencies(requirements: list[str], platform: str, cache: Path) -> list[Path]:
    """All dependency wheels for ``platform`` in ``cache`` (``pip download --only-binary=:all:``)."""
    cache.mkdir(parents=True, exist_ok=True)
    if platform == host_platform_or_none():
        _pip_download(requirements, platform, cache)  # pip's own resolver, markers of this machine
    else:
        _download_foreign(requirements, platform, cache)
    wheels = [p for p in sorted(cache.glob("*.whl")) if _dist_name(p.name.split("-")[0]) not in BLENDER_PROVIDED]
    names = [_dist_name(p.name.split("-")[0]) for p in wheels]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # a cache reused across different pins: never ship two versions of one module
        raise SystemExit(f"{cache} holds several versions of {', '.join(twice)}; delete the folder and build again.")
    return wheels


def host_platform_or_none() -> str | None:
    try:
        return host_platform()
    except SystemExit:
        return None


def manifest_text(platform: str, wheel_names: list[str]) -> str:
    """The manifest of the repo with ``platforms`` and ``wheels`` set for this build."""
    lines = MANIFEST.read_text().splitlines()
    out = []
    for line in lines:
        if line.startswith("platforms ="):
            line = f'platforms = ["{platform}"]'
        elif line.startswith("wheels ="):
            line = "wheels = [\n" + "".join(f'  "./wheels/{n}",\n' for n in wheel_names) + "]"
        out.append(line)
    return "\n".join(out) + "\n"


def build(out: Path, variant: str = "cpu", platform: str | None = None, wheel_cache: Path | None = None) -> Path:
    """Build the extension zip; returns its path."""
    platform = platform or host_platform()
    if platform not in PIP_PLATFORMS:
        raise SystemExit(f"unknown platform {platform!r}; choose from {', '.join(PIP_PLATFORMS)}")
    if variant == "cuda" and platform != "linux-x64":
        raise SystemExit("the cuda variant exists for linux-x64 only (PyTorch publishes CUDA wheels on PyPI for Linux)")
    version = tomllib.loads(MANIFEST.read_text())["version"]
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if variant == "cpu" else f"-{variant}"
    zip_path = out / f"dahyf_blender-{version}-{platform}{suffix}.zip"
    with tempfile.TemporaryDirectory(prefix="dahyf-addon-") as tmp:
        tmp = Path(tmp)
        wheels = [build_engine_wheel(tmp / "engine")]
        if variant != "local":
            cache = (wheel_cache or REPO / "build" / "wheels") / f"{platform}-{variant}"
            wheels += download_dependencies(engine_requirements(variant, platform), platform, cache)
        names = [w.name for w in wheels]
        partial = zip_path.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("blender_manifest.toml", manifest_text(platform, names))
            for path in sorted(ADDON_DIR.rglob("*")):
                if (path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
                        and not DEV_ONLY & set(path.relative_to(ADDON_DIR).parts)):
                    zf.write(path, path.relative_to(ADDON_DIR).as_posix())
            for path in sorted((REPO / "rigs").glob("*")):  # retarget presets + matcher: dahyf_blender.rigs
                if path.suffix in (".py", ".toml"):
                    zf.write(path, f"rigs/{path.name}")
            for w in wheels:  # wheels are already compressed
                zf.write(w, f"wheels/{w.name}", compress_type=zipfile.ZIP_STORED)
        os.replace(partial, zip_path)
    return zip_path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "dist", help="output folder (default dist/)")
    p.add_argument("--variant", choices=("cpu", "cuda", "local"), default="cpu")
    p.add_argument("--platform", choices=tuple(PIP_PLATFORMS), default=None, help="default: this machine's")
    p.add_argument("--wheel-cache", type=Path, default=None, help="where downloaded wheels are kept (default build/wheels)")
    args = p.parse_args(argv)
    path = build(args.out, args.variant, args.platform, args.wheel_cache)
    size = path.stat().st_size
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with zipfile.ZipFile(path) as zf:
        n_wheels = sum(1 for n in zf.namelist() if n.startswith("wheels/"))
    print(f"{path}  {size / 2**20:.1f} MiB  {n_wheels} wheels  sha256:{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
