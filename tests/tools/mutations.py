"""Planted bugs (issue 15): each is a bug the suite was once blind to. Every one is applied, alone, to
a scratch git worktree of HEAD; the tests that must see it run there (``pytest -x``); the table says
which test failed, or ``MISSED`` when they all passed.

Run from the repository root (Python 3.11 tier, bpy installed; 1-6 min on 2 CPUs, by load):

    .venv/bin/python tests/tools/mutations.py [--only NAME ...] [--list]

Only committed code is mutated (the worktree is of HEAD). The worktree and its temporary folder are
removed at the end. The suite itself must pass on HEAD for a failure to mean anything.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutation:
    name: str
    bug: str
    path: str
    edits: tuple[tuple[str, str], ...]   # (text, replacement), each text found exactly once
    tests: tuple[str, ...]


_ROT90_ALWAYS = '''
class _Rot90Always:
    """MUTATION: turn every rotated video 90 degrees clockwise, whatever its metadata says."""

    def __init__(self, cap):
        self._cap = cap
        self._turn = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)) % 360 != 0

    def __getattr__(self, name):
        return getattr(self._cap, name)

    def read(self):
        ok, image = self._cap.read()
        if ok and image is not None and self._turn:
            image = cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
        return ok, image


def _open_capture(path: str) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if cap.isOpened():
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        return _Rot90Always(cap)
    return cap


def _unused_open_capture(path: str) -> cv2.VideoCapture:'''

MUTATIONS = (
    Mutation("axis_mapping", "retargeting ignores the per-segment rest alignment (the per-joint axis mapping)",
             "rigs/handframe.py",
             (("    return np.asarray(D, dtype=np.float64) @ np.asarray(A, dtype=np.float64)",
               "    return np.asarray(D, dtype=np.float64)"),),
             ("tests/test_rigs_presets.py", "tests/blender/test_retarget.py")),
    Mutation("engine_mirror", "the landmark engine mirrors left-hand poses with the wrong sign",
             "engine/net/landmark.py",
             (("pose = xp.where(left[:, None, None], mirror_pose(pose), pose)",
               "pose = xp.where(left[:, None, None], -mirror_pose(pose), pose)"),),
             ("tests/test_landmark_engine.py", "tests/test_refine.py")),
    Mutation("refine_mirror", "the refinement fits left hands to the un-mirrored landmarks",
             "engine/net/landmark.py",
             (("lm_r, size, f, flex_axes=self.flex_axes, **self.refine_pose_options)",
               "lm, size, f, flex_axes=self.flex_axes, **self.refine_pose_options)"),),
             ("tests/test_refine.py", "tests/test_landmark_engine.py")),
    Mutation("gate_strict", "the confidence gate uses > instead of >=",
             "engine/capture/stages.py",
             (("confident = sample.confidence >= self.threshold", "confident = sample.confidence > self.threshold"),),
             ("tests/test_capture_pipeline.py", "tests/test_capture_filters.py")),
    Mutation("sample_accuracy", "landmark y scaled by the image width (only the ground truth can tell)",
             "engine/capture/tracking.py",
             (("pts = np.array([(p.x * w, p.y * h) for p in lms], dtype=np.float32)",
               "pts = np.array([(p.x * w, p.y * w) for p in lms], dtype=np.float32)"),),
             ("tests/blender/test_addon_capture.py::"
              "test_capture_of_the_sample_clip_in_the_startup_file_matches_its_ground_truth",)),
    Mutation("demo_blend", "dahyf demo saves its .blend before the capture (an empty scene)",
             "dahyf_blender/devtools/headless.py",
             (('    take_path = os.path.abspath(os.path.join(args.out_dir, name + ".take.npz"))\n',
               '    take_path = os.path.abspath(os.path.join(args.out_dir, name + ".take.npz"))\n'
               '    bpy.ops.wm.save_as_mainfile(filepath=blend)\n'),
              ('    bpy.ops.wm.save_as_mainfile(filepath=blend)\n    out = {"ok"', '    out = {"ok"')),
             ("tests/blender/test_demo.py",)),
    Mutation("esc_ignored", "Esc in the modal capture does not stop it",
             "dahyf_blender/ops_capture.py",
             (('        if event.type == "ESC" and event.value == "PRESS":\n            self.stop()\n',
               '        if event.type == "ESC" and event.value == "PRESS":\n            pass\n'),),
             ("tests/blender/test_addon_startup.py",)),
    Mutation("rotation_90_only", "rotated videos are always turned 90 degrees clockwise (right for 90 only)",
             "engine/capture/video.py",
             (("\ndef _open_capture(path: str) -> cv2.VideoCapture:", _ROT90_ALWAYS),),
             ("tests/test_capture_video.py",)),
    Mutation("broken_engine", "the default engine does not load: the capture tests must fail, not skip",
             "engine/net/checkpoint.py",
             (("def load_checkpoint(",
               "def load_checkpoint(*_args, **_kwargs):\n"
               "    raise CheckpointError('MUTATION: the engine is broken')\n\n\ndef _unused_load_checkpoint("),),
             ("tests/blender/test_addon_capture.py",)),
)


def _run(mutation: Mutation, tree: Path, pythonpath: Path) -> tuple[str, str]:
    target = tree / mutation.path
    original = mutated = target.read_text(encoding="utf-8")
    for old, new in mutation.edits:
        if mutated.count(old) != 1:
            return "NOT APPLIED", f"{mutation.path}: the text to mutate occurs {mutated.count(old)} times"
        mutated = mutated.replace(old, new)
    target.write_text(mutated, encoding="utf-8")
    try:
        env = {**os.environ, "PYTHONPATH": str(pythonpath), "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-rfE", "-p", "no:cacheprovider",
                               *mutation.tests], cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    finally:
        target.write_text(original, encoding="utf-8")
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, flags=re.M)
    if proc.returncode == 0:
        return "MISSED", proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if not failed:
        return "NO RESULT", (proc.stdout + proc.stderr)[-400:]
    return "caught", failed[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="mutation names (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.list or not chosen:
        for m in MUTATIONS:
            print(f"{m.name:18s} {m.bug}")
        return 0 if chosen else 2
    with tempfile.TemporaryDirectory(prefix="dahyf-mutations-") as tmp:
        tree, link = Path(tmp) / "tree", Path(tmp) / "path"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), "HEAD"], check=True)
        try:
            link.mkdir()
            (link / "dahyf").symlink_to(tree / "engine")   # the mutated engine before the installed one
            print("| mutation | planted bug | result | first failing test |\n|---|---|---|---|", flush=True)
            results = []
            for m in chosen:
                outcome, detail = _run(m, tree, link)
                results.append(outcome)
                print(f"| {m.name} | {m.bug} | {outcome} | `{detail}` |", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    return 0 if all(r == "caught" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
