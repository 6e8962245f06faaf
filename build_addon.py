#!/usr/bin/env python3
"""Build the installable Blender extension: ``DIR/dahyf_blender-<version>-<tier>-<platform>[-<variant>].zip``.

The zip holds the extension manifest, the add-on (``dahyf_blender/`` without its ``devtools/``
folder), the retarget presets, the engine built as a wheel from ``pyproject.toml``, and the
dependency wheels of one Python tier and one platform, so that *Install from Disk* in Blender
needs no network.

Python tiers (one zip each; Blender refuses a zip outside its range at install, the add-on
checks again at register):

py311  Python 3.11: Blender 4.2 LTS to 5.0 (``blender_version_max = "5.1.0"``, exclusive)
py313  Python 3.13: Blender 5.1 and newer

Variants
--------
cpu    (default) the wheels of ``requirements-addon.lock`` for the tier: MediaPipe (without the
       dependencies it declares but the hand landmarker never imports: jax, jaxlib, scipy,
       sounddevice, sentencepiece …), OpenCV headless, matplotlib (imported by MediaPipe's Tasks
       package). No torch: the capture runs on numpy.
cuda   cpu + PyPI's torch 2.13.0 for Linux x64 (the CUDA 12 build with its nvidia-* wheels; several
       GB), for the in-process GPU engine.
local  only the engine wheel; its dependencies come from the Python that runs Blender (a venv
       with the ``bpy`` module). For tests and development: it installs in seconds.

numpy is never bundled: Blender ships its own (1.26 in 4.2–5.0, 2.x in 5.1+), imported before any
extension loads, so a second copy could never be used.

Usage::

    python build_addon.py [--out dist] [--variant cpu|cuda|local] [--tier py311|py313]
                          [--platform linux-x64|windows-x64|macos-arm64] [--wheel-cache build/wheels]
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
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent
ADDON_DIR = REPO / "dahyf_blender"
MANIFEST = REPO / "blender_manifest.toml"
#: The wheels the extension ships, pinned, with a ``python_version`` marker where a tier differs.
ADDON_LOCK = REPO / "requirements-addon.lock"
#: Folder of ``dahyf_blender`` holding development scripts; never shipped.
DEVTOOLS = "devtools"
#: The module of ``dahyf_blender`` that says what a zip was built for (rewritten in each zip).
BUILD_INFO = "build_info.py"


@dataclass(frozen=True)
class Tier:
    """One Python tier: the Python of its wheels and the Blender versions that run that Python."""

    name: str
    python: tuple[int, int]
    blender_min: tuple[int, int, int]
    blender_max: tuple[int, int, int] | None  # first Blender version not supported; None = open

    @property
    def python_version(self) -> str:
        return "%d.%d" % self.python

    @property
    def abi(self) -> str:
        return "cp%d%d" % self.python


#: The one table of tiers (DESIGN.md §6). Blender 4.2–5.0 run Python 3.11, Blender 5.1+ Python 3.13.
TIERS: dict[str, Tier] = {
    "py311": Tier("py311", (3, 11), (4, 2, 0), (5, 1, 0)),
    "py313": Tier("py313", (3, 13), (5, 1, 0), None),
}
VARIANTS = ("cpu", "cuda", "local")

#: Blender platform id -> pip --platform tags (newest first).
PIP_PLATFORMS: dict[str, tuple[str, ...]] = {
    "linux-x64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64"),
    "windows-x64": ("win_amd64",),
    "macos-arm64": ("macosx_14_0_arm64", "macosx_13_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64",
                    "macosx_11_0_universal2", "macosx_10_15_universal2", "macosx_10_9_universal2"),
}
#: Environment markers of each platform, for evaluating requirements for a machine other than this one.
MARKER_ENV: dict[str, dict[str, str]] = {
    "linux-x64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix"},
    "windows-x64": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64", "os_name": "nt"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64", "os_name": "posix"},
}
#: Provided by Blender itself; never bundled.
BLENDER_PROVIDED = ("numpy",)
#: What the cuda variant adds (PyPI's torch is the CUDA build on Linux).
CUDA_TORCH = "torch==2.13.0"


def _requirement(text: str):
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip always carries it
        from pip._vendor.packaging.requirements import Requirement
    return Requirement(text)


def dist_name(name: str) -> str:
    """Normalised distribution name (PEP 503): ``Python_dateutil`` -> ``python-dateutil``."""
    return name.lower().replace("_", "-").replace(".", "-")


def target_env(tier: Tier, platform: str) -> dict[str, str]:
    """Marker environment of ``platform`` running the tier's Python (what pip would see there)."""
    return dict(MARKER_ENV[platform], python_version=tier.python_version, python_full_version=tier.python_version + ".0",
                implementation_name="cpython", platform_python_implementation="CPython", extra="")


def shipped_requirements(tier: Tier, platform: str = "linux-x64", lock: Path = ADDON_LOCK) -> list[str]:
    """The pinned wheels of ``requirements-addon.lock`` that apply to the tier and platform (``name==version``)."""
    env = target_env(tier, platform)
    out = []
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = _requirement(line)
        if len(req.specifier) != 1 or next(iter(req.specifier)).operator != "==":
            raise SystemExit(f"{lock.name}: {line!r} is not pinned with ==")
        if dist_name(req.name) in BLENDER_PROVIDED:
            raise SystemExit(f"{lock.name}: {req.name} is Blender's own and must not be shipped")
        if req.marker is None or req.marker.evaluate(env):
            out.append(f"{req.name}{req.specifier}")
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


def host_tier() -> Tier:
    """The tier of the Python running this script."""
    for tier in TIERS.values():
        if sys.version_info[:2] == tier.python:
            return tier
    raise SystemExit(f"Python {sys.version_info[0]}.{sys.version_info[1]} is not a DaHyF tier "
                     f"({', '.join(t.python_version for t in TIERS.values())}): pass --tier")


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


def _cached(requirement: str, cache: Path) -> bool:
    """A wheel of exactly this ``name==version`` is already in ``cache``."""
    req = _requirement(requirement)
    version = str(next(iter(req.specifier)).version) if len(req.specifier) == 1 else None
    return version is not None and any(
        dist_name(w.name.split("-")[0]) == dist_name(req.name) and w.name.split("-")[1] == version
        for w in cache.glob("*.whl"))


def pip_download(requirements: list[str], tier: Tier, platform: str, cache: Path, no_deps: bool = True) -> None:
    """``pip download --only-binary=:all:`` for the tier's Python on ``platform`` into ``cache``
    (nothing to do, and no network, when every pinned wheel is there already)."""
    if no_deps and all(_cached(r, cache) for r in requirements):
        return
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", tier.python_version,
           "--implementation", "cp", "--abi", tier.abi, "--abi", "abi3", "--abi", "none", "-d", str(cache)]
    for tag in PIP_PLATFORMS[platform] + ("any",):
        cmd += ["--platform", tag]
    subprocess.run(cmd + (["--no-deps"] if no_deps else []) + requirements, check=True)


def wheel_requirements(wheel: Path, env: dict[str, str]) -> list:
    """Requires-Dist of a wheel whose markers hold in ``env`` (no extras)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode("utf8", "replace").splitlines()
    reqs = [_requirement(line.split(":", 1)[1].strip()) for line in lines if line.startswith("Requires-Dist:")]
    return [r for r in reqs if r.marker is None or r.marker.evaluate(env)]


def download_cuda_torch(tier: Tier, cache: Path) -> None:
    """PyPI's CUDA torch for Linux x64 and its dependency closure, read with the target's markers.

    pip evaluates environment markers for the machine it runs on, so torch is fetched with
    ``--no-deps`` and its dependencies (nvidia-*, triton …) are followed from the wheels' metadata.
    """
    env = target_env(tier, "linux-x64")
    pip_download([CUDA_TORCH], tier, "linux-x64", cache)
    for _ in range(6):
        have = {dist_name(w.name.split("-")[0]) for w in cache.glob("*.whl")}
        missing = sorted({f"{r.name}{r.specifier}" for w in cache.glob("*.whl") for r in wheel_requirements(w, env)
                          if dist_name(r.name) not in have and dist_name(r.name) not in BLENDER_PROVIDED})
        if not missing:
            return
        pip_download(missing, tier, "linux-x64", cache, no_deps=True)
    raise SystemExit(f"could not complete torch's dependencies: {', '.join(missing)}")


def dependency_wheels(variant: str, tier: Tier, platform: str, cache_root: Path) -> list[Path]:
    """The dependency wheels of a cpu or cuda build, downloaded into (or found in) a per-build cache.

    Exactly the pinned ``name==version`` of each requirement is taken from the cache (which may hold
    other wheels from earlier pins); the cuda variant adds everything torch's closure brought.
    """
    cache = cache_root / f"{tier.name}-{platform}"
    cache.mkdir(parents=True, exist_ok=True)
    wanted = shipped_requirements(tier, platform)
    pip_download(wanted, tier, platform, cache)
    pinned = {dist_name(_requirement(r).name): str(next(iter(_requirement(r).specifier)).version) for r in wanted}
    wheels = [w for w in sorted(cache.glob("*.whl"))
              if pinned.get(dist_name(w.name.split("-")[0])) == w.name.split("-")[1]]
    if variant == "cuda":
        torch_cache = cache_root / f"{tier.name}-{platform}-cuda-torch"
        torch_cache.mkdir(parents=True, exist_ok=True)
        download_cuda_torch(tier, torch_cache)
        wheels += sorted(torch_cache.glob("*.whl"))
    names = [dist_name(w.name.split("-")[0]) for w in wheels]
    twice = sorted({n for n in names if names.count(n) > 1})
    missing = sorted(set(pinned) - set(names))
    if twice or missing:
        raise SystemExit(f"{cache}: {'several versions of ' + ', '.join(twice) if twice else ''}"
                         f"{'no wheel for ' + ', '.join(missing) if missing else ''}; delete the folder and build again.")
    return wheels


def manifest_text(tier: Tier, platform: str, wheel_names: list[str]) -> str:
    """The repository's manifest with this build's Blender range, platform and wheels."""
    fmt = lambda v: ".".join(str(x) for x in v)
    out = []
    for line in MANIFEST.read_text().splitlines():
        if line.startswith("blender_version_min ="):
            line = f'blender_version_min = "{fmt(tier.blender_min)}"'
            if tier.blender_max is not None:
                line += f'\nblender_version_max = "{fmt(tier.blender_max)}"'
        elif line.startswith("blender_version_max ="):
            continue
        elif line.startswith("platforms ="):
            line = f'platforms = ["{platform}"]'
        elif line.startswith("wheels ="):
            line = "wheels = [\n" + "".join(f'  "./wheels/{n}",\n' for n in wheel_names) + "]"
        out.append(line)
    return "\n".join(out) + "\n"


def build_info_text(tier: Tier, platform: str, variant: str) -> str:
    """``dahyf_blender/build_info.py`` of a zip: what it was built for (checked at register)."""
    return (f'"""What this zip of the extension was built for (written by build_addon.py)."""\n'
            f"TIER = {tier.name!r}\nPYTHON = {tier.python!r}\nBLENDER_MIN = {tier.blender_min!r}\n"
            f"BLENDER_MAX = {tier.blender_max!r}\nPLATFORM = {platform!r}\nVARIANT = {variant!r}\n")


def zip_name(version: str, tier: Tier, platform: str, variant: str) -> str:
    suffix = "" if variant == "cpu" else f"-{variant}"
    return f"dahyf_blender-{version}-{tier.name}-{platform}{suffix}.zip"


def addon_files() -> list[Path]:
    """The add-on's files that ship: everything but ``devtools/`` and caches."""
    out = []
    for path in sorted(ADDON_DIR.rglob("*")):
        rel = path.relative_to(ADDON_DIR)
        if path.is_file() and rel.parts[0] != DEVTOOLS and "__pycache__" not in rel.parts and path.suffix != ".pyc":
            out.append(path)
    return out


def build(out: Path, variant: str = "cpu", platform: str | None = None, wheel_cache: Path | None = None,
          tier: str | None = None) -> Path:
    """Build the extension zip; returns its path."""
    platform = platform or host_platform()
    if platform not in PIP_PLATFORMS:
        raise SystemExit(f"unknown platform {platform!r}; choose from {', '.join(PIP_PLATFORMS)}")
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if variant == "cuda" and platform != "linux-x64":
        raise SystemExit("the cuda variant exists for linux-x64 only (PyTorch publishes CUDA wheels on PyPI for Linux)")
    the_tier = TIERS[tier] if tier else host_tier()
    if variant == "local" and (platform != host_platform() or the_tier.python != sys.version_info[:2]):
        raise SystemExit("the local variant is for this machine's platform and Python only")
    version = tomllib.loads(MANIFEST.read_text())["version"]
    out.mkdir(parents=True, exist_ok=True)
    zip_path = out / zip_name(version, the_tier, platform, variant)
    with tempfile.TemporaryDirectory(prefix="dahyf-addon-") as tmp:
        wheels = [build_engine_wheel(Path(tmp) / "engine")]
        if variant != "local":
            wheels += dependency_wheels(variant, the_tier, platform, wheel_cache or REPO / "build" / "wheels")
        partial = zip_path.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("blender_manifest.toml", manifest_text(the_tier, platform, [w.name for w in wheels]))
            for path in addon_files():
                arc = path.relative_to(ADDON_DIR).as_posix()
                if arc == BUILD_INFO:
                    zf.writestr(arc, build_info_text(the_tier, platform, variant))
                else:
                    zf.write(path, arc)
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
    p.add_argument("--variant", choices=VARIANTS, default="cpu")
    p.add_argument("--tier", choices=tuple(TIERS), default=None, help="default: the tier of this Python")
    p.add_argument("--platform", choices=tuple(PIP_PLATFORMS), default=None, help="default: this machine's")
    p.add_argument("--wheel-cache", type=Path, default=None, help="where downloaded wheels are kept (default build/wheels)")
    args = p.parse_args(argv)
    path = build(args.out, args.variant, args.platform, args.wheel_cache, args.tier)
    size = path.stat().st_size
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with zipfile.ZipFile(path) as zf:
        n_wheels = sum(1 for n in zf.namelist() if n.startswith("wheels/"))
    print(f"{path}  {size / 2**20:.1f} MiB  {n_wheels} wheels  sha256:{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
