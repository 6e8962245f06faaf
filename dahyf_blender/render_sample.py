"""Render the sample clip's frames with Cycles (headless bpy), or encode frames to H.264.

A standalone script run by ``dahyf.sample_video`` in a child process with the Python that has
the ``bpy`` wheel; it reads plain arrays only (no dahyf import):

    python render_sample.py --scene scene.npz --frames-dir DIR --frames 0,1,2
    python render_sample.py --encode DIR --n-frames 240 --fps 30 --video out.mp4

Scene arrays: ``hand_vertices`` (T, V, 3) and ``arm_vertices`` (T, A, 3) m in OpenCV camera
coordinates (x right, y down, z forward), ``hand_faces``, ``arm_faces``, ``focal`` px,
``image_size`` (W, H), ``samples``, ``denoise``. The Blender camera sits at the origin looking
down −Z with +Y up, so a camera point (x, y, z) is placed at (x, −y, −z).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bpy
import numpy as np

SENSOR_WIDTH_MM = 36.0
#: Skin albedo range (sRGB), background colour (linear), world ambient strength.
SKIN_LIGHT = (0.78, 0.54, 0.43)
SKIN_DARK = (0.72, 0.48, 0.38)
BACKGROUND = (0.16, 0.20, 0.25)
AMBIENT = 0.2


def srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64)
    return tuple(np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)) + (1.0,)


def cv_to_blender(p: np.ndarray) -> np.ndarray:
    """(…, 3) OpenCV camera coordinates → Blender world (camera at origin, looking down −Z)."""
    return p * np.array([1.0, -1.0, -1.0], dtype=p.dtype)


def setup_render(scene, W: int, H: int, samples: int, denoise: bool) -> None:
    scene.render.engine = "CYCLES"
    c = scene.cycles
    c.device = "CPU"
    c.samples = samples
    c.use_adaptive_sampling = True
    c.adaptive_threshold = 0.05
    c.use_denoising = bool(denoise)
    c.seed = 0
    c.use_animated_seed = False
    c.max_bounces = 4
    c.diffuse_bounces = 2
    c.glossy_bounces = 1
    c.transmission_bounces = 0
    c.transparent_max_bounces = 0
    c.volume_bounces = 0
    c.caustics_reflective = False
    c.caustics_refractive = False
    c.blur_glossy = 1.0
    scene.render.resolution_x, scene.render.resolution_y = W, H
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    scene.render.film_transparent = False
    scene.render.use_persistent_data = True  # keep kernels and shaders between frames
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.color_depth = "8"
    scene.view_settings.view_transform = "AgX"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0


def setup_camera(scene, focal: float, W: int, H: int) -> None:
    cam = bpy.data.cameras.new("camera")
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = SENSOR_WIDTH_MM
    cam.lens = focal * SENSOR_WIDTH_MM / W
    cam.shift_x = cam.shift_y = 0.0
    cam.clip_start, cam.clip_end = 0.01, 20.0
    obj = bpy.data.objects.new("camera", cam)
    obj.location = (0.0, 0.0, 0.0)
    obj.rotation_euler = (0.0, 0.0, 0.0)
    scene.collection.objects.link(obj)
    scene.camera = obj


def setup_world(scene) -> None:
    """Plain background seen by the camera; a dimmer uniform ambient lights the hand."""
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    nt = world.node_tree
    nt.nodes.clear()
    out = nt.nodes.new("ShaderNodeOutputWorld")
    mix = nt.nodes.new("ShaderNodeMixShader")
    path = nt.nodes.new("ShaderNodeLightPath")
    seen = nt.nodes.new("ShaderNodeBackground")
    seen.inputs["Color"].default_value = BACKGROUND + (1.0,)
    seen.inputs["Strength"].default_value = 1.0
    amb = nt.nodes.new("ShaderNodeBackground")
    amb.inputs["Color"].default_value = (0.8, 0.85, 0.95, 1.0)
    amb.inputs["Strength"].default_value = AMBIENT
    nt.links.new(path.outputs["Is Camera Ray"], mix.inputs["Fac"])
    nt.links.new(amb.outputs["Background"], mix.inputs[1])
    nt.links.new(seen.outputs["Background"], mix.inputs[2])
    nt.links.new(mix.outputs["Shader"], out.inputs["Surface"])
    scene.world = world


def add_area_light(scene, name, cv_pos, cv_target, power, size, color=(1.0, 1.0, 1.0)) -> None:
    light = bpy.data.lights.new(name, "AREA")
    light.energy = power
    light.size = size
    light.color = color
    obj = bpy.data.objects.new(name, light)
    pos = cv_to_blender(np.asarray(cv_pos, dtype=np.float64))
    tgt = cv_to_blender(np.asarray(cv_target, dtype=np.float64))
    obj.location = tuple(pos)
    # An area light shines down its local −Z: aim that axis at the target.
    d = tgt - pos
    d /= np.linalg.norm(d)
    z = -d
    up = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=1)
    obj.rotation_mode = "QUATERNION"
    obj.rotation_quaternion = _quat(R)
    scene.collection.objects.link(obj)


def _quat(R: np.ndarray):
    w = np.sqrt(max(0.0, 1.0 + R[0, 0] + R[1, 1] + R[2, 2])) / 2.0
    x = np.sqrt(max(0.0, 1.0 + R[0, 0] - R[1, 1] - R[2, 2])) / 2.0
    y = np.sqrt(max(0.0, 1.0 - R[0, 0] + R[1, 1] - R[2, 2])) / 2.0
    z = np.sqrt(max(0.0, 1.0 - R[0, 0] - R[1, 1] + R[2, 2])) / 2.0
    x = np.copysign(x, R[2, 1] - R[1, 2])
    y = np.copysign(y, R[0, 2] - R[2, 0])
    z = np.copysign(z, R[1, 0] - R[0, 1])
    return (w, x, y, z)


def setup_lights(scene) -> None:
    hand = (0.0, -0.03, 0.5)
    add_area_light(scene, "key", (-0.45, -0.55, 0.05), hand, 32.0, 0.6, (1.0, 0.96, 0.9))
    add_area_light(scene, "fill", (0.6, -0.05, 0.15), hand, 7.0, 0.8, (0.9, 0.95, 1.0))
    add_area_light(scene, "rim", (0.15, -0.7, 1.1), hand, 30.0, 0.5)


def skin_material():
    """Principled skin: albedo varied by a noise texture, light subsurface scattering."""
    mat = bpy.data.materials.new("skin")
    mat.use_nodes = True
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    coord = nt.nodes.new("ShaderNodeTexCoord")
    noise = nt.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 160.0
    noise.inputs["Detail"].default_value = 4.0
    ramp = nt.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].position = 0.35
    ramp.color_ramp.elements[0].color = srgb_to_linear(SKIN_DARK)
    ramp.color_ramp.elements[1].position = 0.65
    ramp.color_ramp.elements[1].color = srgb_to_linear(SKIN_LIGHT)
    nt.links.new(coord.outputs["Object"], noise.inputs["Vector"])
    nt.links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
    nt.links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = 0.55
    bsdf.inputs["Subsurface Weight"].default_value = 0.25
    bsdf.inputs["Subsurface Radius"].default_value = (1.0, 0.35, 0.2)
    bsdf.inputs["Subsurface Scale"].default_value = 0.004
    bsdf.inputs["Specular IOR Level"].default_value = 0.35
    bsdf.subsurface_method = "BURLEY"
    return mat


def make_object(scene, name: str, verts: np.ndarray, faces: np.ndarray, mat, subdivide: int):
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(cv_to_blender(verts.astype(np.float64)).tolist(), [], faces.tolist())
    mesh.update()
    mesh.shade_smooth()
    mesh.materials.append(mat)
    obj = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(obj)
    if subdivide:
        mod = obj.modifiers.new("subdiv", "SUBSURF")
        mod.levels = mod.render_levels = subdivide
    return obj


def set_vertices(obj, verts: np.ndarray) -> None:
    obj.data.vertices.foreach_set("co", cv_to_blender(verts.astype(np.float32)).ravel())
    obj.data.update()


def render(scene_path: Path, frames_dir: Path, frames: list[int]) -> None:
    z = np.load(scene_path, allow_pickle=False)
    W, H = (int(v) for v in z["image_size"])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    setup_render(scene, W, H, int(z["samples"]), bool(z["denoise"]))
    setup_camera(scene, float(z["focal"]), W, H)
    setup_world(scene)
    setup_lights(scene)
    mat = skin_material()
    hand_v, arm_v = z["hand_vertices"], z["arm_vertices"]
    hand = make_object(scene, "hand", hand_v[0], z["hand_faces"], mat, subdivide=0)
    arm = make_object(scene, "forearm", arm_v[0], z["arm_faces"], mat, subdivide=1)
    frames_dir.mkdir(parents=True, exist_ok=True)
    for t in frames:
        set_vertices(hand, hand_v[t])
        set_vertices(arm, arm_v[t])
        final = frames_dir / f"{t:05d}.png"
        tmp = frames_dir / f"{t:05d}.partial.png"
        scene.render.filepath = str(tmp)
        bpy.ops.render.render(write_still=True)
        tmp.replace(final)
        print(f"frame {t} -> {final}", flush=True)


def encode(frames_dir: Path, n_frames: int, fps: int, video: Path) -> None:
    """PNG sequence → H.264 MP4 through Blender's sequencer and FFmpeg."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    first = bpy.data.images.load(str(frames_dir / f"{0:05d}.png"))
    W, H = first.size
    scene.render.resolution_x, scene.render.resolution_y = W, H
    scene.render.resolution_percentage = 100
    scene.render.fps, scene.render.fps_base = fps, 1.0
    scene.frame_start, scene.frame_end = 1, n_frames
    scene.view_settings.view_transform = "Standard"
    se = scene.sequence_editor_create()
    strips = se.strips if hasattr(se, "strips") else se.sequences
    strip = strips.new_image("frames", str(frames_dir / f"{0:05d}.png"), 1, 1)
    for t in range(1, n_frames):
        strip.elements.append(f"{t:05d}.png")
    strip.frame_final_duration = n_frames
    st = scene.render.image_settings
    if hasattr(st, "media_type"):
        st.media_type = "VIDEO"
    st.file_format = "FFMPEG"
    ff = scene.render.ffmpeg
    ff.format = "MPEG4"
    ff.codec = "H264"
    ff.constant_rate_factor = "HIGH"
    ff.ffmpeg_preset = "GOOD"
    ff.gopsize = fps
    ff.audio_codec = "NONE"
    out_dir = video.parent / (video.stem + "_blender_out")
    out_dir.mkdir(parents=True, exist_ok=True)
    scene.render.filepath = str(out_dir) + "/"
    scene.render.use_file_extension = True
    bpy.ops.render.render(animation=True)
    made = sorted(out_dir.glob("*.mp4"))
    if len(made) != 1:
        raise RuntimeError(f"expected one .mp4 in {out_dir}, found {[m.name for m in made]}")
    made[0].replace(video)
    out_dir.rmdir()
    print(f"encoded {n_frames} frames -> {video}", flush=True)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--scene", type=Path)
    p.add_argument("--frames-dir", type=Path)
    p.add_argument("--frames", type=str, default="")
    p.add_argument("--encode", type=Path)
    p.add_argument("--n-frames", type=int)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--video", type=Path)
    a = p.parse_args(argv)
    if a.encode:
        encode(a.encode, a.n_frames, a.fps, a.video)
    else:
        render(a.scene, a.frames_dir, [int(f) for f in a.frames.split(",") if f])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
