"""Render rendered-clip frames with Cycles (headless bpy), or encode frames to H.264. Dev-only.

Run by ``dahyf.sample_video`` in a child process with the Python that has the ``bpy`` wheel,
from the repository root; it reads plain arrays only (no ``dahyf`` import):

    python -m dahyf_blender.devtools.render_sample --scene scene.npz --frames-dir DIR --frames 0,1,2
    python -m dahyf_blender.devtools.render_sample --encode DIR --n-frames 240 --fps 30 --video out.mp4

Scene arrays (``dahyf.sample_video.render.write_scene``): ``mesh_count``; per mesh ``i``
``mesh{i}_vertices`` (T, S, V, 3) m in OpenCV camera coordinates (x right, y down, z forward; S
sub-frame samples, averaged for motion blur when S > 1), ``mesh{i}_faces``, ``mesh{i}_subdiv``,
optionally ``mesh{i}_colour`` (sRGB: a plain object, not skin);
``focal`` px, ``image_size`` (W, H), ``samples``, ``denoise``; the look: ``skin_light`` /
``skin_dark`` (sRGB), ``background`` (two linear colours), ``background_scale`` (0: plain,
else the size of a procedural pattern), ``light_scale``, ``ambient``. The camera and the points
follow the add-on's convention (``dahyf_blender.coords``): camera at the origin looking along +Y.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bpy
import numpy as np

from dahyf_blender.coords import CAMERA_EULER, SENSOR_WIDTH_MM, cv_to_blender, lens_from_focal


def srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64)
    return tuple(np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)) + (1.0,)


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
    cam.lens = lens_from_focal(focal, W)
    cam.shift_x = cam.shift_y = 0.0
    cam.clip_start, cam.clip_end = 0.01, 20.0
    obj = bpy.data.objects.new("camera", cam)
    obj.location = (0.0, 0.0, 0.0)
    obj.rotation_euler = CAMERA_EULER
    scene.collection.objects.link(obj)
    scene.camera = obj


def setup_world(scene, colours, pattern_scale: float, ambient: float) -> None:
    """What the camera sees behind the hand: a plain colour, or (``pattern_scale`` > 0) a soft
    procedural pattern between two colours (a stand-in for a room); a dimmer uniform ambient
    lights the hand."""
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    nt = world.node_tree
    nt.nodes.clear()
    out = nt.nodes.new("ShaderNodeOutputWorld")
    mix = nt.nodes.new("ShaderNodeMixShader")
    path = nt.nodes.new("ShaderNodeLightPath")
    seen = nt.nodes.new("ShaderNodeBackground")
    seen.inputs["Strength"].default_value = 1.0
    c0, c1 = (tuple(float(v) for v in c) + (1.0,) for c in colours)
    if pattern_scale > 0:
        coord = nt.nodes.new("ShaderNodeTexCoord")
        noise = nt.nodes.new("ShaderNodeTexNoise")
        noise.inputs["Scale"].default_value = float(pattern_scale)
        noise.inputs["Detail"].default_value = 6.0
        noise.inputs["Distortion"].default_value = 0.8
        ramp = nt.nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.elements[0].position, ramp.color_ramp.elements[0].color = 0.3, c0
        ramp.color_ramp.elements[1].position, ramp.color_ramp.elements[1].color = 0.7, c1
        nt.links.new(coord.outputs["Window"], noise.inputs["Vector"])
        nt.links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
        nt.links.new(ramp.outputs["Color"], seen.inputs["Color"])
    else:
        seen.inputs["Color"].default_value = c0
    amb = nt.nodes.new("ShaderNodeBackground")
    amb.inputs["Color"].default_value = (0.8, 0.85, 0.95, 1.0)
    amb.inputs["Strength"].default_value = float(ambient)
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


def setup_lights(scene, scale: float) -> None:
    """Key, fill and rim area lights aimed at where the hands are; ``scale`` multiplies their power."""
    hand = (0.0, -0.03, 0.5)
    add_area_light(scene, "key", (-0.45, -0.55, 0.05), hand, 32.0 * scale, 0.6, (1.0, 0.96, 0.9))
    add_area_light(scene, "fill", (0.6, -0.05, 0.15), hand, 7.0 * scale, 0.8, (0.9, 0.95, 1.0))
    add_area_light(scene, "rim", (0.15, -0.7, 1.1), hand, 30.0 * scale, 0.5)


def skin_material(light, dark):
    """Principled skin: albedo (sRGB ``dark`` .. ``light``) varied by a noise texture, light
    subsurface scattering."""
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
    ramp.color_ramp.elements[0].color = srgb_to_linear(dark)
    ramp.color_ramp.elements[1].position = 0.65
    ramp.color_ramp.elements[1].color = srgb_to_linear(light)
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


def object_material(colour):
    """A plain, slightly glossy material of sRGB ``colour`` (a prop: a bottle, a box)."""
    mat = bpy.data.materials.new("object")
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = srgb_to_linear(colour)
    bsdf.inputs["Roughness"].default_value = 0.35
    return mat


def make_object(scene, name: str, verts: np.ndarray, faces: np.ndarray, mat, subdivide: int):
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(cv_to_blender(verts).tolist(), [], faces.tolist())
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
    obj.data.vertices.foreach_set("co", cv_to_blender(verts).astype(np.float32).ravel())
    obj.data.update()


def render(scene_path: Path, frames_dir: Path, frames: list[int]) -> None:
    """Render the listed frames; a mesh with S > 1 sub-frame samples is rendered S times with
    ``samples / 2`` each and the images averaged (motion blur by accumulation)."""
    z = np.load(scene_path, allow_pickle=False)
    W, H = (int(v) for v in z["image_size"])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    n_sub = max(int(z[f"mesh{i}_vertices"].shape[1]) for i in range(int(z["mesh_count"])))
    setup_render(scene, W, H, max(1, int(z["samples"]) // min(n_sub, 2)), bool(z["denoise"]))
    setup_camera(scene, float(z["focal"]), W, H)
    setup_world(scene, z["background"], float(z["background_scale"]), float(z["ambient"]))
    setup_lights(scene, float(z["light_scale"]))
    mat = skin_material(z["skin_light"], z["skin_dark"])
    meshes = []
    for i in range(int(z["mesh_count"])):
        verts = z[f"mesh{i}_vertices"]
        m = object_material(z[f"mesh{i}_colour"]) if f"mesh{i}_colour" in z.files else mat
        obj = make_object(scene, f"mesh{i}", verts[0, 0], z[f"mesh{i}_faces"], m, int(z[f"mesh{i}_subdiv"]))
        meshes.append((obj, verts))
    frames_dir.mkdir(parents=True, exist_ok=True)
    for t in frames:
        acc = None
        for k in range(n_sub):
            for obj, verts in meshes:
                set_vertices(obj, verts[t, min(k, verts.shape[1] - 1)])
            tmp = frames_dir / f"{t:05d}.partial.png"
            scene.render.filepath = str(tmp)
            bpy.ops.render.render(write_still=True)
            img = bpy.data.images.load(str(tmp))
            px = np.empty(W * H * 4, np.float32)
            img.pixels.foreach_get(px)
            bpy.data.images.remove(img)
            acc = px if acc is None else acc + px
        final = frames_dir / f"{t:05d}.png"
        if n_sub > 1:
            _save_png(acc / n_sub, W, H, tmp)
        tmp.replace(final)
        print(f"frame {t} -> {final}", flush=True)


def _save_png(pixels: np.ndarray, W: int, H: int, path: Path) -> None:
    """Write display-referred RGBA floats (W·H·4, as ``Image.pixels``) as an 8-bit PNG."""
    img = bpy.data.images.new("accumulated", W, H, alpha=False)
    img.pixels.foreach_set(pixels.astype(np.float32))
    img.filepath_raw = str(path)
    img.file_format = "PNG"
    img.save()
    bpy.data.images.remove(img)


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
