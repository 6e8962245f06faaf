"""The retarget figures of docs/retarget.md: accuracy on every test rig, pinch, wrist turn, bake speed.

    python tests/blender/retarget_figures.py [--json out.json] [--rigs godot,rigify,mixamo ...] [--speed]

Runs in real bpy against whichever ``dahyf_blender`` / ``rigs`` are first on ``sys.path`` (run it with
``PYTHONPATH`` pointing at an older checkout to measure that one: the operator's extra options are
passed only when it has them). Rigs and the judge: :mod:`retarget_rigs` (independent hand frame).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from mathutils import Matrix  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

import retarget_rigs as R  # noqa: E402

GODOT = HERE.parents[2] / "shared" / "rigs" / "godotxr_hand_r.gltf"
RIGS = ("godot", "rigify", "mixamo", "unreal", "vrm", "autorigpro", "mpfb", "quaternius", "webxr", "webxr_left",
        "fourbone")


def retarget_module():
    bpy.ops.wm.read_homefile(use_empty=True)
    from dahyf_blender import retarget

    if not hasattr(bpy.types, "DAHYF_OT_retarget"):
        retarget.register()
    return retarget


def operator_options(**wanted) -> dict:
    """The operator keyword arguments this version of the add-on knows."""
    props = bpy.ops.dahyf.retarget.get_rna_type().properties
    return {k: v for k, v in wanted.items() if k in props}


def make_target(name: str):
    if name == "godot":
        before = set(bpy.data.objects)
        bpy.ops.import_scene.gltf(filepath=str(GODOT))
        return next(o for o in bpy.data.objects if o not in before and o.type == "ARMATURE")
    if name == "rigify":
        return R.rigify_human()
    return R.convention_rig(name)


def judged_target(retarget, tgt, side: str, rig: str) -> R.JudgedHand:
    """The target hand the take lands on (its side from the add-on's detection), judged on its true bones."""
    m = retarget.match_armature(tgt)
    usable = [s for s in "RL" if s in m.hands and m.hands[s].usable]
    return R.truth(rig, side if side in usable else usable[0])


def accuracy(retarget, rig: str, tgt, side: str, poses: dict, contacts: bool = True) -> dict:
    """Segment-direction agreement over the named poses, and the pinch gap."""
    src = R.build_source(side, name=f"src {side}", obj_matrix=Matrix.Rotation(-0.4, 4, "Y") @ Matrix.Scale(2.0, 4),
                         roll_seed=7)
    frames = R.key_source(src, list(poses.values()), side)
    if tgt.animation_data is not None:
        tgt.animation_data_clear()
    try:
        bpy.ops.dahyf.retarget(source=src.name, target=tgt.name, **operator_options(contacts=contacts))
    except RuntimeError as exc:
        return {"refused": str(exc).splitlines()[0][:160]}
    sh = R.JudgedHand.of(retarget.source_hand(src))
    th = judged_target(retarget, tgt, "R" if side == "right" else "L", rig)
    err = R.segment_errors(src, sh, tgt, th, frames)
    med, p90, n = R.summary(err)
    by_pose = {k: round(float(np.median(list(err[f].values()))), 2) for f, k in zip(frames, poses)}
    thumb = [v for per in err.values() for j, v in per.items() if j.startswith("thumb")]
    out = {"median": round(med, 2), "p90": round(p90, 2), "segments": n, "thumb_median": round(float(np.median(thumb)), 2),
           "thumb_p90": round(float(np.percentile(thumb, 90)), 2), "by_pose_median": by_pose}
    if "pinch" in poses:
        bpy.context.scene.frame_set(frames[list(poses).index("pinch")])
        out["pinch_gap_source"] = round(R.tip_gap(src, sh), 4)
        out["pinch_gap_target"] = round(R.tip_gap(tgt, th), 4)
    bpy.data.objects.remove(src)
    return out


def wrist_turn(retarget, rig: str, tgt, degrees: float = 60.0) -> dict:
    """A 60° turn of the captured hand (about its own along axis, then a tilted axis): the hand bone's turn."""
    out = {}
    joints, _ = R.mano_rest("right")
    along = joints[4] - joints[0]
    for axis_name, axis in (("along", along), ("tilted", along + np.array([0.0, 0.05, 0.08]))):
        g0 = Rotation.from_rotvec(R.GLOBAL)
        g1 = g0 * Rotation.from_rotvec(R.rotvec(axis, degrees))
        poses = [np.zeros((16, 3)), np.zeros((16, 3))]
        poses[0][0], poses[1][0] = g0.as_rotvec(), g1.as_rotvec()
        src = R.build_source("right", name="src wrist", roll_seed=3)
        frames = R.key_source(src, poses)
        if tgt.animation_data is not None:
            tgt.animation_data_clear()
        try:
            bpy.ops.dahyf.retarget(source=src.name, target=tgt.name, **operator_options(wrist=1.0))
        except RuntimeError as exc:
            return {"refused": str(exc)[:160]}
        th = judged_target(retarget, tgt, "R", rig)
        out[axis_name] = round(R.bone_turn(tgt, th.wrist, *frames), 2)
        bpy.data.objects.remove(src)
    return out


def speed(retarget, rig: str, frames: int = 300) -> dict:
    """ms per frame (wall and this process's CPU) of a bake of ``frames`` frames onto the rig with a
    skinned mesh (~30 000 vertices), planning and keying included."""
    R.clear_scene()
    tgt = R.rigify_human(with_mesh=True) if rig == "rigify" else make_target(rig)
    if rig != "rigify":
        R.add_tube_mesh(tgt, ring=16, rings=14, radius=0.2)
    n_verts = sum(len(o.data.vertices) for o in bpy.data.objects
                  if o.type == "MESH" and any(m.type == "ARMATURE" and m.object == tgt for m in o.modifiers))
    poses = list(R.named_poses().values())
    src = R.build_source("right", name="src speed")
    # Every frame keyed, the poses blended in turn (a capture keys every frame).
    t = np.linspace(0, len(poses) - 1, frames)
    seq = [(1 - (x % 1)) * poses[int(x)] + (x % 1) * poses[min(int(x) + 1, len(poses) - 1)] for x in t]
    from dahyf_blender import compat, keying

    owner = compat.assign_action(src, bpy.data.actions.new("speed take"))
    quats = []
    for theta in seq:
        Rm = Rotation.from_rotvec(theta).as_matrix()
        quats.append([Matrix((np.array(src.data.bones[n].matrix_local.to_3x3()).T @ Rm[j]
                              @ np.array(src.data.bones[n].matrix_local.to_3x3())).tolist()).to_quaternion()
                      for j, n in enumerate(R.JOINT_NAMES)])
    q = keying.make_continuous(np.array(quats))
    fr = np.arange(1, frames + 1, dtype=np.float64)
    for j, n in enumerate(R.JOINT_NAMES):
        for k in range(4):
            keying.write_keys(compat.new_fcurve(owner, f'pose.bones["{n}"].rotation_quaternion', k, n), fr, q[:, j, k])
    bpy.context.scene.frame_start, bpy.context.scene.frame_end = 1, frames
    # What the operator runs (matching, planning, posing, keying), then the operator as a script calls it
    # (bpy.ops adds a scene update before and after).
    t0, c0 = time.perf_counter(), time.process_time()
    plan = retarget.make_plan(src, tgt)
    retarget.bake(plan, bpy.context, 1, frames)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    tgt.animation_data_clear()
    t1 = time.perf_counter()
    bpy.ops.dahyf.retarget(source=src.name, target=tgt.name)
    dt_op = time.perf_counter() - t1
    return {"frames": frames, "mesh_vertices": n_verts, "ms_per_frame": round(1000 * dt / frames, 2),
            "cpu_ms_per_frame": round(1000 * dc / frames, 2), "operator_ms_per_frame": round(1000 * dt_op / frames, 2),
            "load_average": round(os.getloadavg()[0], 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rigs", default=",".join(RIGS))
    p.add_argument("--speed", action="store_true", help="also the bake speed on Rigify and Mixamo")
    p.add_argument("--speed-only", action="store_true", help="only the bake speed")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    retarget = retarget_module()
    poses = R.named_poses()
    results = {}
    for rig in ([] if args.speed_only else args.rigs.split(",")):
        R.clear_scene()
        tgt = make_target(rig)
        row = {"right": accuracy(retarget, rig, tgt, "right", poses), "left": accuracy(retarget, rig, tgt, "left", poses),
               "pinch_contacts_off": accuracy(retarget, rig, tgt, "right", {"pinch": poses["pinch"]}, contacts=False),
               "wrist_60": wrist_turn(retarget, rig, tgt)}
        results[rig] = row
        print(rig, json.dumps(row), flush=True)
    if args.speed or args.speed_only:
        for rig in ("rigify", "mixamo"):
            results[f"speed_{rig}"] = speed(retarget, rig)
            print(f"speed_{rig}", json.dumps(results[f"speed_{rig}"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
