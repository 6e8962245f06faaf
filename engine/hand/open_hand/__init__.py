"""Generator of the open hand model: this project's own MANO-format right and left hand.

Run ``python -m dahyf.hand.open_hand`` to rebuild ``engine/assets/open_hand_{right,left}.npz``
(deterministic: same numbers every run). Format, sources and design: ``engine/assets/OPEN_HAND.md``.

The model keeps MANO's conventions so that a pose θ from a MANO-based method means the same here:

* the canonical frame of MANO_RIGHT's flat hand (θ = 0, ``flat_hand_mean=True``): metres, wrist
  joint near (0.096, 0.006, 0.006), fingers pointing to −x, palm facing −y, thumb on the +z side;
* the 16-joint tree of ``tables.PARENTS`` with rest joints at MANO's published mean rest joints
  (``MANO_REST_JOINTS``), each joint rotating about its own rest position (axis-angle, LBS);
* positive rotation about +z flexes the four fingers toward the palm (MANO's relaxed mean pose
  has positive z on all twelve finger joints).

What is our own: the mesh (an implicit surface of round cones around that skeleton, a rounded
palm slab and a thenar pad, polygonised with surface nets), the skin weights, the joint regressor
and the 10-D anthropometric shape space. Only numpy and scipy are needed, at generator time only.

Modules: ``skeleton`` (reference joints, flexion axes, the round cones), ``surface`` (distance field,
surface nets), ``rigging`` (skin weights, regressor, fingertips, shape space), ``build`` (assembly,
the left model, the files).
"""
from __future__ import annotations

from ...assets import ASSETS
from .build import build_left, build_mesh, build_right, check_closed_manifold, main, write_assets
from .rigging import SHAPE_COMPONENTS, joint_regressor, shape_directions, skin_weights, tip_vertex_ids
from .skeleton import (FINGER_FLEX_AXIS, FINGER_RADII, MANO_REST_JOINTS, MANO_TIP_POINTS, PALM_NORMAL, THUMB_FLEX_AXIS,
                       Primitive, primitives)
from .surface import hand_sdf, relax_onto_surface, surface_nets

__all__ = [
    "ASSETS", "FINGER_FLEX_AXIS", "FINGER_RADII", "MANO_REST_JOINTS", "MANO_TIP_POINTS", "PALM_NORMAL", "Primitive",
    "SHAPE_COMPONENTS", "THUMB_FLEX_AXIS", "build_left", "build_mesh", "build_right", "check_closed_manifold",
    "hand_sdf", "joint_regressor", "main", "primitives", "relax_onto_surface", "shape_directions", "skin_weights",
    "surface_nets", "tip_vertex_ids", "write_assets",
]
