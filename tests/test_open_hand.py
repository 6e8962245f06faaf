"""The open hand model: MANO format, valid mesh and weights, MANO's canonical frame and θ meaning.

Reference numbers (MANO's published mean rest joints and fingertips) live in
``dahyf.hand.open_hand``; their sources are listed in engine/assets/OPEN_HAND.md.
"""
from __future__ import annotations

import numpy as np
import pytest

from dahyf import load_hand_model
from dahyf.hand import open_hand as oh
from dahyf.hand.mano_io import load_model_npz
from dahyf.hand.mirror import mirror_points, mirror_pose
from dahyf.hand.tables import FINGER_JOINTS, FINGERS, JOINT_NAMES, MANO_ARRAY_SHAPES, PARENTS

SIDES = ("right", "left")
X_SIGN = {"right": np.array([1.0, 1.0, 1.0]), "left": np.array([-1.0, 1.0, 1.0])}
TIP_KEYPOINT = {f: 4 * (k + 1) for k, f in enumerate(FINGERS)}  # 21-keypoint index of each fingertip


@pytest.fixture(scope="module", params=SIDES)
def side(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def models() -> dict:
    return {s: load_hand_model("open", s) for s in SIDES}   # computes in float64 for float64 input


def _arrays(side: str) -> dict[str, np.ndarray]:
    arrays, extras = load_model_npz(oh.ASSETS / f"open_hand_{side}.npz")
    return {**arrays, **extras}


def _pose(entries: dict[int, np.ndarray]) -> np.ndarray:
    pose = np.zeros((1, 16, 3))
    for j, aa in entries.items():
        pose[0, j] = aa
    return pose


def _flex_axis(joint: int) -> np.ndarray:
    return oh.THUMB_FLEX_AXIS if JOINT_NAMES[joint].startswith("thumb") else oh.FINGER_FLEX_AXIS


# --- file format -------------------------------------------------------------------------------

def test_asset_files_are_small_mano_format_npz(side):
    path = oh.ASSETS / f"open_hand_{side}.npz"
    assert path.stat().st_size < 1_000_000
    with np.load(path, allow_pickle=False) as z:  # no object arrays: loads without pickles
        assert set(z.files) == set(MANO_ARRAY_SHAPES) | {"tip_vertex_ids"}
    a = _arrays(side)
    V = a["v_template"].shape[0]
    assert 300 <= V <= 5000
    assert a["tip_vertex_ids"].shape == (5,) and a["tip_vertex_ids"].max() < V
    assert a["kintree_table"][1].tolist() == list(range(16))
    assert a["kintree_table"][0, 1:].tolist() == list(PARENTS[1:])


# --- mesh and weights --------------------------------------------------------------------------

def test_skin_weights_are_non_negative_and_sum_to_one(side):
    w = _arrays(side)["weights"]
    assert w.min() >= 0.0
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    assert (w.max(0) > 0.5).all(), "every joint must fully own some skin"


def test_faces_are_valid_non_degenerate_closed_and_outward(side):
    a = _arrays(side)
    v, f = a["v_template"], a["f"]
    assert f.min() >= 0 and f.max() < len(v)
    assert (f[:, 0] != f[:, 1]).all() and (f[:, 1] != f[:, 2]).all() and (f[:, 0] != f[:, 2]).all()
    area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    assert area.min() > 1e-9  # m², i.e. > 0.001 mm²
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed), "an edge is used twice in the same direction"
    _, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert (counts == 2).all(), "mesh is not closed / not manifold"
    volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6
    assert volume > 1e-4, "faces must be wound outward (positive enclosed volume)"


def test_joint_regressor_is_convex_and_reproduces_the_rest_joints(side):
    a = _arrays(side)
    R = a["J_regressor"]
    assert R.min() >= 0.0
    np.testing.assert_allclose(R.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(R @ a["v_template"], oh.MANO_REST_JOINTS * X_SIGN[side], atol=5e-5)


def test_joints_follow_the_shape(side, models):
    """J_regressor is a mean of skin vertices, so scaling the shape scales the joints with it."""
    a = _arrays(side)
    v = a["v_template"]
    scaled = oh.MANO_REST_JOINTS[0] * X_SIGN[side] + 1.1 * (v - oh.MANO_REST_JOINTS[0] * X_SIGN[side])
    expected = oh.MANO_REST_JOINTS[0] * X_SIGN[side] + 1.1 * (oh.MANO_REST_JOINTS - oh.MANO_REST_JOINTS[0]) * X_SIGN[side]
    np.testing.assert_allclose(a["J_regressor"] @ scaled, expected, atol=1e-4)


# --- canonical frame (MANO's flat mean hand) -----------------------------------------------------

def test_rest_hand_sits_in_mano_canonical_frame(side, models):
    s = X_SIGN[side]
    out = models[side](np.zeros((1, 16, 3)))
    joints, kp = out.joints[0], out.keypoints[0]
    # Wrist where MANO's wrist is.
    np.testing.assert_allclose(joints[0], np.array([0.0957, 0.0064, 0.0062]) * s, atol=1e-3)
    # Fingers point along −x; the thumb is on the +z side, pinky on −z, right hand.
    for finger in FINGERS[1:]:
        base, tip = joints[FINGER_JOINTS[finger][0]], kp[TIP_KEYPOINT[finger]]
        d = (tip - base) / np.linalg.norm(tip - base)
        assert d[0] * s[0] < -0.8, finger
    z = [joints[FINGER_JOINTS[f][0], 2] for f in ("thumb", "index", "middle", "ring", "pinky")]
    assert z == sorted(z, reverse=True)
    # Fingertips land on MANO's fingertip vertices.
    tips = kp[[TIP_KEYPOINT[f] for f in FINGERS]]
    assert np.linalg.norm(tips - oh.MANO_TIP_POINTS * s, axis=1).max() < 1e-4


def test_palm_faces_minus_y(side):
    """Mid-palm, the palmar skin is the −y surface: outward normals there point to −y."""
    a = _arrays(side)
    v, f = a["v_template"], a["f"]
    centre = np.array([0.05, 0.0, -0.005]) * X_SIGN[side]
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    c = v[f].mean(1)
    near = np.linalg.norm(c[:, [0, 2]] - centre[[0, 2]], axis=1) < 0.01
    palmar = near & (c[:, 1] < 0)
    dorsal = near & (c[:, 1] > 0)
    assert palmar.sum() > 3 and dorsal.sum() > 3
    assert (n[palmar] @ np.array([0, -1.0, 0]) > 0).mean() > 0.9
    assert (n[dorsal] @ np.array([0, 1.0, 0]) > 0).mean() > 0.9


# --- anatomy -------------------------------------------------------------------------------------

def test_rest_bone_lengths_are_adult(models):
    """Adult hand dimensions, British adults 5th-percentile woman to 95th-percentile man
    (Pheasant & Haslegrave, *Bodyspace*, 3rd ed. 2006, hand dimensions table): hand length
    (wrist crease to middle fingertip) 159-205 mm, hand breadth at the metacarpals 69-95 mm.
    Segment ranges are broad physiological bounds for joint-centre distances (phalanx bone
    lengths: Buryanov & Kotiuk 2010, Int. J. Morphol. 28(3), widened for MANO's regressed joints).
    """
    hand = models["right"]
    out = hand(np.zeros((1, 16, 3)))
    j, kp, v = out.joints[0], out.keypoints[0], out.vertices[0]
    length = np.linalg.norm(kp[TIP_KEYPOINT["middle"]] - j[0])
    assert 0.159 <= length <= 0.205
    palm_skin = _arrays("right")["weights"][:, 0] > 0.5  # skin that moves with the wrist: palm, no digits
    knuckles = v[palm_skin & (v[:, 0] > 0.0) & (v[:, 0] < 0.04)]
    breadth = np.ptp(knuckles[:, 2])
    assert 0.069 <= breadth <= 0.095
    ranges = {"proximal": (0.018, 0.055), "middle": (0.015, 0.035), "distal": (0.015, 0.040)}
    for finger in FINGERS:
        ids = FINGER_JOINTS[finger]
        chain = np.vstack([j[list(ids)], kp[TIP_KEYPOINT[finger]]])
        for (name, (lo, hi)), seg in zip(ranges.items(), np.linalg.norm(np.diff(chain, axis=0), axis=1)):
            assert lo <= seg <= hi, (finger, name, seg)


def test_shape_space_changes_size_smoothly(models):
    hand = models["right"]
    zero = np.zeros((1, 16, 3))

    def measures(betas):
        out = hand(zero, np.asarray(betas, dtype=np.float64)[None])
        j, kp = out.joints[0], out.keypoints[0]
        return np.array([
            np.linalg.norm(kp[TIP_KEYPOINT["middle"]] - j[0]),                      # hand length
            np.linalg.norm(j[FINGER_JOINTS["index"][0]] - j[FINGER_JOINTS["pinky"][0]]),  # breadth
            np.linalg.norm(kp[TIP_KEYPOINT["middle"]] - j[FINGER_JOINTS["middle"][0]]),   # finger length
            np.linalg.norm(kp[TIP_KEYPOINT["thumb"]] - j[FINGER_JOINTS["thumb"][0]]),     # thumb length
        ])

    steps = np.linspace(-3, 3, 7)
    for k, (column, sign) in {0: (0, 1), 1: (1, 1), 2: (2, 1), 4: (0, 1), 5: (3, 1)}.items():
        values = []
        for s in steps:
            b = np.zeros(10)
            b[k] = s
            values.append(measures(b)[column])
        values = np.array(values)
        assert (np.diff(values) * sign > 0).all(), f"beta[{k}] must change size monotonically"
        assert np.abs(np.diff(values, 2)).max() < 0.02 * np.abs(np.diff(values)).mean(), "not smooth"
    # One standard deviation of overall size is a few percent, three are still a plausible adult hand.
    base = measures(np.zeros(10))[0]
    for s in (-3, 3):
        b = np.zeros(10)
        b[0] = s
        assert 0.140 < measures(b)[0] < 0.230
        assert 0.03 < abs(measures(b)[0] / base - 1) < 0.25
    # Every component moves the skin, none moves it absurdly (< 2 cm at 1 SD).
    S = hand.shapedirs
    per = np.linalg.norm(S, axis=1).max(0)
    assert (per > 5e-4).all() and (per < 0.02).all()


# --- θ means what it means in MANO -------------------------------------------------------------

@pytest.mark.parametrize("joint", range(1, 16), ids=JOINT_NAMES[1:])
def test_flexing_a_finger_joint_moves_its_tip_toward_the_palm(joint, side, models):
    hand = models[side]
    finger = next(f for f in FINGERS if joint in FINGER_JOINTS[f])
    axis = _flex_axis(joint)
    rest = hand(_pose({})).keypoints[0, TIP_KEYPOINT[finger]]
    bent = hand(mirror_pose(_pose({joint: 0.6 * axis})) if side == "left" else _pose({joint: 0.6 * axis}))
    tip = bent.keypoints[0, TIP_KEYPOINT[finger]]
    assert (tip - rest) @ oh.PALM_NORMAL > 0.003  # m toward the palm side
    # Only that finger moves.
    others = [TIP_KEYPOINT[f] for f in FINGERS if f != finger]
    np.testing.assert_allclose(bent.keypoints[0, others], hand(_pose({})).keypoints[0, others], atol=1e-9)


def test_mano_relaxed_mean_pose_curls_every_finger(models):
    """MANO's published mean hand pose (``hands_mean`` of MANO_RIGHT, a relaxed, slightly curled
    hand) must curl every finger toward the palm here too: the same θ means the same pose."""
    hands_mean = np.array([
        0.1117, -0.0429, 0.4164, 0.1088, 0.0660, 0.7562, -0.0964, 0.0909, 0.1885,
        -0.1181, -0.0509, 0.5296, -0.1437, -0.0552, 0.7049, -0.0192, 0.0923, 0.3379,
        -0.4570, 0.1963, 0.6255, -0.2147, 0.0660, 0.5069, -0.3697, 0.0603, 0.0795,
        -0.1419, 0.0859, 0.6355, -0.3033, 0.0579, 0.6314, -0.1761, 0.1321, 0.3734,
        0.8510, -0.2769, 0.0915, -0.4998, -0.0266, -0.0529, 0.5356, -0.0460, 0.2774,
    ]).reshape(15, 3)
    hand = models["right"]
    rest = hand(_pose({})).keypoints[0]
    relaxed = hand(_pose({j + 1: hands_mean[j] for j in range(15)})).keypoints[0]
    for finger in FINGERS:
        k = TIP_KEYPOINT[finger]
        assert (relaxed[k] - rest[k]) @ oh.PALM_NORMAL > 0.005, finger


# --- left / right ------------------------------------------------------------------------------

def test_left_model_is_the_mirror_image_of_the_right(models, as_backend):
    r, l = _arrays("right"), _arrays("left")
    np.testing.assert_allclose(l["v_template"], r["v_template"] * [-1, 1, 1], atol=1e-7)
    np.testing.assert_array_equal(l["f"], r["f"][:, ::-1])
    np.testing.assert_array_equal(l["tip_vertex_ids"], r["tip_vertex_ids"])
    gen = np.random.default_rng(3)
    pose, betas = as_backend(0.4 * gen.normal(size=(4, 16, 3))), as_backend(gen.normal(size=(4, 10)))
    right = models["right"](pose, betas)
    left = models["left"](mirror_pose(pose), betas)
    np.testing.assert_allclose(np.asarray(left.vertices), np.asarray(mirror_points(right.vertices)), atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.asarray(left.keypoints), np.asarray(mirror_points(right.keypoints)), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_load_open_model_in_float32_and_float64(side, dtype, as_backend):
    hand = load_hand_model("open", side)
    pose64 = 0.3 * np.random.default_rng(0).normal(size=(2, 16, 3))
    pose = as_backend(pose64.astype(dtype))
    out = hand(pose, as_backend(np.zeros((2, 10), dtype)), as_backend(np.zeros((2, 3), dtype)))
    assert str(out.vertices.dtype).endswith(dtype) and out.vertices.shape == (2, hand.num_vertices, 3)
    assert out.joints.shape == (2, 16, 3) and out.keypoints.shape == (2, 21, 3)
    assert np.isfinite(np.asarray(out.vertices)).all()
    ref = load_hand_model("open", side)(pose64.astype(dtype).astype(np.float64))
    np.testing.assert_allclose(np.asarray(out.vertices).astype(np.float64), ref.vertices, atol=1e-5, rtol=0)


def test_generator_reproduces_the_shipped_assets():
    """The shipped files are exactly what ``python -m dahyf.hand.open_hand`` writes."""
    built = oh.build_right()
    shipped = _arrays("right")
    for key, value in built.items():
        np.testing.assert_allclose(shipped[key], value, atol=1e-6, err_msg=key)
    left = oh.build_left(built)
    shipped_left = _arrays("left")
    for key, value in left.items():
        np.testing.assert_allclose(shipped_left[key], value, atol=1e-6, err_msg=key)
