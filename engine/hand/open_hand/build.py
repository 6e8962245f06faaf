"""Assembly of the open hand model: mesh, weights, regressor and shape space into the MANO arrays, the
mirrored left model, and the two asset files (``python -m dahyf.hand.open_hand``)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ...assets import ASSETS
from ...fileio import atomic_write
from ..mirror import mirror_model_arrays
from ..tables import NUM_JOINTS, PARENTS
from .rigging import joint_regressor, shape_directions, skin_weights, tip_vertex_ids
from .skeleton import GRID_MAX, GRID_MIN, GRID_STEP, MANO_REST_JOINTS, MANO_TIP_POINTS, primitives
from .surface import hand_sdf, relax_onto_surface, surface_nets

# ---------------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------------

def build_mesh() -> tuple[np.ndarray, np.ndarray]:
    """The rest-pose skin: vertices (V, 3) m and outward-wound triangles (F, 3)."""
    prims = primitives()
    sdf = lambda p: hand_sdf(p, prims)  # noqa: E731
    verts, faces = surface_nets(sdf, GRID_MIN, GRID_MAX, GRID_STEP)
    check_closed_manifold(verts, faces)
    tips = {int(i): t for i, t in zip(tip_vertex_ids(verts), MANO_TIP_POINTS)}  # fingertip vertices sit on the tips
    verts = relax_onto_surface(verts, faces, sdf, pinned=tips)
    return verts, faces


def check_closed_manifold(verts: np.ndarray, faces: np.ndarray) -> None:
    """Raise ValueError unless the mesh is one closed, consistently wound, genus-0 surface."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    undirected, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    euler = len(verts) - len(undirected) + len(faces)
    if (counts != 2).any() or len(np.unique(directed, axis=0)) != len(directed) or euler != 2:
        raise ValueError(f"skin mesh is not a closed genus-0 manifold ({(counts != 2).sum()} bad edges, "
                         f"Euler characteristic {euler}); shift GRID_MIN/GRID_MAX or change GRID_STEP")


def build_right() -> dict[str, np.ndarray]:
    """All arrays of the right open hand model (the 9 MANO arrays + ``tip_vertex_ids``)."""
    prims = primitives()
    verts, faces = build_mesh()
    W = skin_weights(verts, faces, prims)
    Jreg = joint_regressor(verts, MANO_REST_JOINTS, W)
    V = len(verts)
    kintree = np.array([PARENTS, list(range(NUM_JOINTS))], dtype=np.int32)
    return {
        "v_template": verts.astype(np.float32),
        "shapedirs": shape_directions(verts, W).astype(np.float32),
        "posedirs": np.zeros((V, 3, 135), dtype=np.float32),
        "J_regressor": Jreg.astype(np.float32),
        "weights": W.astype(np.float32),
        "kintree_table": kintree,
        "f": faces.astype(np.int32),
        "hands_components": np.eye(45, dtype=np.float32),
        "hands_mean": np.zeros(45, dtype=np.float32),
        "tip_vertex_ids": tip_vertex_ids(verts).astype(np.int32),
    }


def build_left(right: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The left model: the mirror image (x → −x) of the right one (``mirror.mirror_model_arrays``)."""
    left = mirror_model_arrays({k: v for k, v in right.items() if k != "tip_vertex_ids"})
    left = {k: np.ascontiguousarray(v).astype(right[k].dtype) for k, v in left.items()}
    left["tip_vertex_ids"] = right["tip_vertex_ids"].copy()
    return left


def write_assets(folder: Path = ASSETS) -> list[Path]:
    """Build both models and write ``open_hand_right.npz`` and ``open_hand_left.npz`` into ``folder``."""
    right = build_right()
    left = build_left(right)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for side, arrays in (("right", right), ("left", left)):
        path = folder / f"open_hand_{side}.npz"
        with atomic_write(path) as fh:
            np.savez_compressed(fh, **arrays)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dahyf.hand.open_hand", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder to write the two .npz files into")
    args = parser.parse_args(argv)
    for path in write_assets(args.out):
        with np.load(path) as z:
            print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {z['v_template'].shape[0]} vertices, "
                  f"{z['f'].shape[0]} faces)")
    return 0
