"""Render the open hand model for the README: rest pose and a posed hand, side by side.

Run: ``.venv/bin/python docs/render_open_hand.py [--out docs/images/open_hand.png]``
(needs the ``bpy`` module of the pinned stack; renders headless with Cycles on the CPU).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from dahyf import load_hand_model
from dahyf.hand.open_hand import FINGER_FLEX_AXIS, THUMB_FLEX_AXIS
from dahyf.hand.tables import FINGER_JOINTS

#: MANO frame → Blender frame for display: fingers up (+Z), back of the hand toward the camera (−Y).
TO_BLENDER = np.array([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0], [-1.0, 0.0, 0.0]])


#: Turn (deg, about the vertical) of the posed hand so that its curled fingers are seen from the side.
POSED_TURN_DEG = 140.0


def demo_pose() -> torch.Tensor:
    """(1, 16, 3) rad: index pointing, the other fingers curled, thumb flexed over them (MANO convention)."""
    pose = torch.zeros(1, 16, 3, dtype=torch.float64)
    for finger in ("middle", "ring", "pinky"):
        for j, angle in zip(FINGER_JOINTS[finger], (1.45, 1.7, 0.9)):
            pose[0, j] = torch.tensor(FINGER_FLEX_AXIS) * angle
    for j, angle in zip(FINGER_JOINTS["index"], (0.1, 0.1, 0.05)):
        pose[0, j] = torch.tensor(FINGER_FLEX_AXIS) * angle
    thumb1, thumb2, thumb3 = FINGER_JOINTS["thumb"]
    pose[0, thumb1] = torch.tensor([0.39, -0.94, -0.08])  # swung across the palm (fitted: tip over the middle finger)
    pose[0, thumb2] = torch.tensor(THUMB_FLEX_AXIS) * 0.35
    pose[0, thumb3] = torch.tensor(THUMB_FLEX_AXIS) * 0.21
    return pose


def add_mesh(bpy, name: str, verts: np.ndarray, faces: np.ndarray, offset, material):
    mesh = bpy.data.meshes.new(name)
    v = verts @ TO_BLENDER.T + np.asarray(offset)
    mesh.from_pydata(v.tolist(), [], faces.tolist())
    mesh.update()
    for poly in mesh.polygons:
        poly.use_smooth = True
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.data.materials.append(material)
    return obj


def render(out: Path, size=(1400, 800), samples: int = 48) -> None:
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    hand = load_hand_model("open", "right").double()
    rest = hand(torch.zeros(1, 16, 3, dtype=torch.float64)).vertices[0].numpy()
    posed = hand(demo_pose()).vertices[0].numpy()
    skin = bpy.data.materials.new("skin")
    skin.use_nodes = True
    bsdf = skin.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (0.80, 0.56, 0.44, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.55
    # Both hands centred on their own wrist-to-fingertip extent.
    for name, verts, dx, rot in (("rest", rest, -0.085, 0.0), ("pointing", posed, 0.10, POSED_TURN_DEG)):
        obj = add_mesh(bpy, name, verts - verts.mean(0), hand.faces, (0, 0, 0), skin)
        obj.rotation_euler = (0.0, 0.0, math.radians(rot))
        obj.location = (dx, 0.0, 0.0)
    world = bpy.data.worlds.new("world")
    world.color = (0.35, 0.35, 0.35)
    scene.world = world
    for name, rot, strength in (("key", (55.0, 0.0, -35.0), 3.2), ("fill", (70.0, 0.0, 60.0), 1.2),
                                ("rim", (-120.0, 0.0, 10.0), 1.5)):
        light = bpy.data.lights.new(name, "SUN")
        light.energy = strength
        light.angle = math.radians(10.0)
        lo = bpy.data.objects.new(name, light)
        lo.rotation_euler = tuple(math.radians(a) for a in rot)
        scene.collection.objects.link(lo)
    cam_data = bpy.data.cameras.new("cam")
    cam_data.type = "ORTHO"
    cam_data.ortho_scale = 0.40
    cam = bpy.data.objects.new("cam", cam_data)
    cam.location = (0.0, -1.0, 0.0)
    cam.rotation_euler = (math.radians(90), 0.0, 0.0)
    scene.collection.objects.link(cam)
    scene.camera = cam
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = True
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.film_transparent = True
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "PNG"
    out.parent.mkdir(parents=True, exist_ok=True)
    scene.render.filepath = str(out.resolve())
    bpy.ops.render.render(write_still=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "images" / "open_hand.png")
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--size", type=int, nargs=2, default=(1400, 800), metavar=("W", "H"))
    args = parser.parse_args()
    render(args.out, size=tuple(args.size), samples=args.samples)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
