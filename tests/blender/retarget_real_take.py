"""A real capture retargeted onto a generated Rigify human: the judge's figures and a picture.

    dahyf capture ../shared/media/videos/dynhamr_demo3.mp4 -o out/dynhamr_take.npz --frames 0:120
    python tests/blender/retarget_real_take.py out/dynhamr_take.npz --picture docs/images/retarget_real.png

Imports the take as the add-on does (one DaHyF rig per hand), bakes each hand onto its side of the
Rigify rig (contacts on), and judges every frame with the independent hand frame of
:mod:`retarget_rigs` (Rigify's DEF- bones). The picture shows a few frames' skeletons, captured (blue)
and Rigify (orange), in each one's own hand frame scaled to hand length: seen from the back of the
hand and from the thumb's side.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

import retarget_rigs as R  # noqa: E402


def skeleton(obj, hand: R.JudgedHand) -> dict[str, np.ndarray]:
    """{finger: (k, 3) points wrist → tip} in the judge's hand frame, in hand lengths (posed)."""
    w, heads, tips = R.hand_points(obj, hand, True)
    H = R.judge_frame(w, {f: heads[f"{f}1"] for f in R.LONG}, hand.side)
    scale = R.hand_length(obj, hand)
    out = {}
    for f in R.FINGERS:
        pts = [w] + [heads[j] for j in (f"{f}1", f"{f}2", f"{f}3") if j in heads] + [tips[f]]
        out[f] = (np.array(pts) - w) @ H / scale
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("take", type=Path)
    p.add_argument("--picture", type=Path)
    args = p.parse_args(argv)
    bpy.ops.wm.read_homefile(use_empty=True)
    from dahyf_blender import ops_import, retarget

    retarget.register()
    sess = ops_import.import_take(bpy.context, str(args.take))
    rig = R.rigify_human()
    shots = []
    for arm in sess.armatures:
        src_hand = retarget.source_hand(arm)
        action, plan = retarget.retarget_objects(bpy.context, arm, rig, target_side="RIGHT" if src_hand.side == "R" else "LEFT")
        frames = list(range(int(action.frame_range[0]), int(action.frame_range[1]) + 1))
        sh, th = R.JudgedHand.of(src_hand), R.truth("rigify", plan.tgt.side)
        err = R.segment_errors(arm, sh, rig, th, frames)
        med, p90, n = R.summary(err)
        print(f"{arm.name} -> Rigify {plan.tgt.side}: {len(frames)} frames, median {med:.2f}°, p90 {p90:.2f}° "
              f"over {n} segments")
        pick = np.linspace(0, len(frames) - 1, 4).astype(int)
        for k in pick:
            bpy.context.scene.frame_set(frames[k])
            shots.append((f"{'right' if src_hand.side == 'R' else 'left'}, frame {frames[k]}", skeleton(arm, sh),
                          skeleton(rig, th)))
    if args.picture:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, len(shots), figsize=(2.0 * len(shots), 4.2))
        for c, (title, s, t) in enumerate(shots):
            for r, (i, j, label) in enumerate(((1, 0, "back of the hand"), (2, 0, "thumb side"))):
                ax = axes[r, c]
                for pts, color in ((s, "tab:blue"), (t, "tab:orange")):
                    for f, q in pts.items():
                        ax.plot(q[:, i], q[:, j], "-o", color=color, ms=2, lw=1.5 if f == "thumb" else 1)
                ax.set_aspect("equal")
                ax.set_xlim(-0.9, 0.9)
                ax.set_ylim(-0.5, 1.3)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(title, fontsize=7)
                if c == 0:
                    ax.set_ylabel(label, fontsize=7)
        fig.suptitle("captured (blue) and Rigify DEF bones (orange), each in its own hand frame", fontsize=8)
        fig.tight_layout()
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.picture, dpi=80)
        print("wrote", args.picture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
