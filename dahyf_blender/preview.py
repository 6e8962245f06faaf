"""Viewport preview: a camera matched to the capture, the video as its background, scene timing.

The camera has the pose of :data:`.coords.CAMERA_EULER`, at the world origin or beside the scene's
geometry when that would be in its view (:func:`capture_origin`); its lens comes from the take's
focal length in pixels (horizontal sensor fit), the render size is the video's, and the principal
point is the image centre (no shift). Video frame ``i`` is scene frame
``i + FRAME_OFFSET``; the movie clip background starts at that frame, so in camera view the hand
mesh overlays the hand in the video while scrubbing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import bpy
import numpy as np

from . import coords

#: Far clip (m) of a capture camera, at least: hands are captured within arm's reach of a camera.
MIN_CLIP_END_M = 5.0
#: Space (m) kept free between a capture camera's view and the scene's geometry.
CLEARANCE_M = 0.5
#: Object types that draw nothing in camera view (the view may overlap them).
_NOT_GEOMETRY = frozenset({"CAMERA", "LIGHT", "LIGHT_PROBE", "LIGHTPROBE", "SPEAKER", "EMPTY"})


@dataclass
class SceneState:
    """What the preview changes on a scene, to restore it when a capture is rolled back."""

    fps: int
    fps_base: float
    frame_start: int
    frame_end: int
    frame_current: int
    resolution_x: int
    resolution_y: int
    resolution_percentage: int
    camera: object

    @classmethod
    def save(cls, scene) -> "SceneState":
        r = scene.render
        return cls(r.fps, r.fps_base, scene.frame_start, scene.frame_end, scene.frame_current,
                   r.resolution_x, r.resolution_y, r.resolution_percentage, scene.camera)

    def restore(self, scene) -> None:
        r = scene.render
        r.fps, r.fps_base = self.fps, self.fps_base
        scene.frame_start, scene.frame_end = self.frame_start, self.frame_end
        scene.frame_current = self.frame_current
        r.resolution_x, r.resolution_y, r.resolution_percentage = self.resolution_x, self.resolution_y, self.resolution_percentage
        try:
            scene.camera = self.camera
        except ReferenceError:  # the old camera was deleted meanwhile
            scene.camera = None


def set_scene_timing(scene, fps: float, first_frame: int, last_frame: int) -> None:
    """Scene fps from the video (exact for fractional rates via fps_base) and frame range of the take.

    Parameters
    ----------
    fps : frames/s of the video. first_frame, last_frame : video frame indices (inclusive).
    """
    base_fps = max(1, round(fps))
    scene.render.fps = base_fps
    scene.render.fps_base = base_fps / float(fps)
    scene.frame_start = int(first_frame) + coords.FRAME_OFFSET
    scene.frame_end = max(int(last_frame), int(first_frame)) + coords.FRAME_OFFSET


def scene_boxes(context) -> np.ndarray:
    """(K, 2, 3) m world (min, max) corners of every object of the scene that can draw in camera view."""
    boxes = []
    for obj in context.scene.objects:
        if obj.type in _NOT_GEOMETRY or not (obj.visible_get(view_layer=context.view_layer) or not obj.hide_render):
            continue
        m = np.array(obj.matrix_world)
        corners = np.asarray(obj.bound_box, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]
        boxes.append((corners.min(axis=0), corners.max(axis=0)))
    return np.array(boxes, dtype=np.float64).reshape(-1, 2, 3)


def capture_origin(context, image_size: tuple[int, int], focal_px: float, depth_m: float) -> np.ndarray:
    """(3,) m: where a new capture's camera and hands go so that no scene geometry is in its view.

    The world origin in an empty scene; beside the geometry along −X otherwise (e.g. in the
    startup file the camera would sit inside the Cube and show its inside instead of the video).
    ``depth_m`` is how far the view must be clear (the camera's far clip).
    """
    lo, hi = coords.view_box(image_size, focal_px, depth_m)
    return coords.clear_origin(scene_boxes(context), lo, hi, CLEARANCE_M)


def add_capture_camera(context, name: str, image_size: tuple[int, int], focal_px: float,
                       video_path: str | None = None, collection=None, location=(0.0, 0.0, 0.0),
                       clip_end_m: float = 100.0):
    """Create the camera matched to a take and make it the scene camera.

    Parameters
    ----------
    image_size : (W, H) px of the video. focal_px : px. video_path : background movie (optional).
    location : (3,) m world position. clip_end_m : far clip (m).

    Returns
    -------
    The camera object.
    """
    scene = context.scene
    W, H = (int(v) for v in image_size)
    lens = coords.lens_from_focal(focal_px, W)  # before creating anything: W = 0 raises here
    cam = bpy.data.cameras.new(name)
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = coords.SENSOR_WIDTH_MM
    cam.lens = lens
    cam.shift_x = cam.shift_y = 0.0
    cam.clip_start, cam.clip_end = 0.01, clip_end_m
    cam_obj = bpy.data.objects.new(name, cam)
    (collection or scene.collection).objects.link(cam_obj)
    cam_obj.location = tuple(float(v) for v in location)
    cam_obj.rotation_euler = coords.CAMERA_EULER
    scene.camera = cam_obj
    scene.render.resolution_x, scene.render.resolution_y = W, H
    scene.render.resolution_percentage = 100
    if video_path:
        set_video_background(cam, video_path)
    return cam_obj


def set_video_background(cam_data, video_path: str):
    """Show ``video_path`` (a movie clip, starting at scene frame FRAME_OFFSET) behind the camera view."""
    clip = bpy.data.movieclips.load(os.path.abspath(video_path), check_existing=True)
    clip.frame_start = coords.FRAME_OFFSET
    cam_data.show_background_images = True
    bg = cam_data.background_images.new()
    bg.source = "MOVIE_CLIP"
    bg.clip = clip
    bg.use_camera_clip = False
    bg.alpha = 1.0
    bg.display_depth = "BACK"
    bg.frame_method = "FIT"
    return clip


def view_through_camera(context) -> None:
    """Switch the 3D viewports of the current screen to camera view (no-op without a UI)."""
    screen = getattr(context, "screen", None)
    if screen is None:
        return
    for area in screen.areas:
        if area.type == "VIEW_3D":
            for space in area.spaces:
                if space.type == "VIEW_3D":
                    space.region_3d.view_perspective = "CAMERA"
