"""Retarget presets and automatic finger matching (rigs/), without Blender."""
from __future__ import annotations

import numpy as np
import pytest

from dahyf.hand.tables import FINGER_JOINTS, FINGERS, JOINT_NAMES
from rigs import handframe, presets

FAMILIES = ("rigify", "mixamo", "unreal", "vrm", "autorigpro", "mpfb", "openxr")


def preset_rig(preset: presets.Preset, sides=("R", "L"), metacarpals=True, tips=True, arm=True):
    """Bone names + parent map of a rig built from a preset's published names and hierarchy."""
    parents: dict[str, str | None] = {"root": None}
    for side in sides:
        spec = preset.hands[side]
        parent = "root"
        if arm:
            for name in spec.arm:
                parents[name] = parent
                parent = name
        wrist = spec.wrist[0]
        parents[wrist] = parent
        for f in FINGERS:
            p = wrist
            if metacarpals and f in spec.metacarpals:
                parents[spec.metacarpals[f][0]] = wrist
                p = spec.metacarpals[f][0]
            for alts in spec.fingers[f]:
                if alts[0]:
                    parents[alts[0]] = p
                    p = alts[0]
            if tips and f in spec.tips:
                parents[spec.tips[f][0]] = p
    return list(parents), parents


@pytest.fixture(scope="module")
def all_presets():
    return presets.load_presets()


def test_every_family_has_a_preset_with_both_hands(all_presets):
    assert set(FAMILIES) <= set(all_presets)
    for name in FAMILIES:
        p = all_presets[name]
        assert set(p.hands) == {"R", "L"}, name
        for side, spec in p.hands.items():
            names = [a[0] for f in FINGERS for a in spec.fingers[f] if a[0]]
            assert len(names) == 15 and len(set(names)) == 15, (name, side)
            assert all(("{S}" not in n) for n in names), "side token left in a name"
        r, l = (set(a[0] for f in FINGERS for a in p.hands[s].fingers[f]) for s in "RL")
        assert not r & l, f"{name}: left and right names collide"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", ["AUTO", "auto", "preset"])
def test_detection_finds_15_bones_per_hand(all_presets, family, mode):
    names, parents = preset_rig(all_presets[family])
    m = presets.detect(names, parents, family if mode == "preset" else mode)
    if mode == "AUTO":
        assert m.preset in (family, "auto")
    for side in "RL":
        spec, hand = all_presets[family].hands[side], m.hands[side]
        assert len(hand.joints) == 15, m.report()
        expected = {JOINT_NAMES[j]: spec.fingers[f][k][0] for f in FINGERS for k, j in enumerate(FINGER_JOINTS[f])}
        assert hand.joints == expected, (mode, m.report())
        assert hand.wrist == spec.wrist[0], (mode, hand.wrist)
        assert hand.usable


@pytest.mark.parametrize("family", ["mixamo", "unreal", "openxr"])
def test_automatic_matching_sets_aside_metacarpals_and_end_bones(all_presets, family):
    names, parents = preset_rig(all_presets[family])
    m = presets.auto_match(names, parents)
    spec = all_presets[family].hands["R"]
    assert m.hands["R"].metacarpals == {f: v[0] for f, v in spec.metacarpals.items()}
    assert m.hands["R"].tips == {f: v[0] for f, v in spec.tips.items()}


def test_unreal_without_ue5_metacarpals_still_matches(all_presets):
    names, parents = preset_rig(all_presets["unreal"], metacarpals=False)
    m = presets.detect(names, parents)
    assert m.preset == "unreal" and all(len(h.joints) == 15 for h in m.hands.values())
    assert not m.hands["R"].metacarpals


def test_mixamo_namespace_and_case_are_ignored(all_presets):
    names, parents = preset_rig(all_presets["mixamo"])
    rename = {n: n.replace("mixamorig:", "mixamorig7:") for n in names}
    m = presets.detect([rename[n] for n in names], {rename[k]: rename.get(v) for k, v in parents.items()})
    assert m.preset == "mixamo"
    assert m.hands["L"].joints["thumb1"] == "mixamorig7:LeftHandThumb1"


@pytest.mark.parametrize("name, side, finger", [
    ("Thumb_Proximal_R", "R", "thumb"), ("thb_02.l", "L", "thumb"), ("Daumen2_L", "L", "thumb"),
    ("pouce.R", "R", "thumb"), ("左親指１", "L", "thumb"), ("mixamorig:RightHandIndex2", "R", "index"),
    ("IndexFinger1_R", "R", "index"), ("idx_1_l", "L", "index"), ("forefinger.L", "L", "index"),
    ("pointer_02.R", "R", "index"), ("右人差指２", "R", "index"), ("middle_01_r", "R", "middle"),
    ("Mid2.L", "L", "middle"), ("中指2.R", "R", "middle"), ("ring_01_l", "L", "ring"), ("rng1_R", "R", "ring"),
    ("annular.L", "L", "ring"), ("薬指1_L", "L", "ring"), ("J_Bip_L_Little1", "L", "pinky"),
    ("pinkie_1.R", "R", "pinky"), ("lil_02_r", "R", "pinky"), ("small2_L", "L", "pinky"),
    ("右小指1", "R", "pinky"), ("finger5-2.L", "L", "pinky"), ("finger1-1.R", "R", "thumb"),
    ("LeftHandPinky3", "L", "pinky"), ("c_pinky1.r", "R", "pinky"),
])
def test_finger_and_side_words(name, side, finger):
    assert presets.name_finger(name) == finger, name
    assert presets.name_side(name) == side, name


@pytest.mark.parametrize("name", ["mixamorig:LeftForeArm", "lowerarm_l", "spine_mid", "hand.R", "palm.01.L",
                                  "upperarm_r", "Head"])
def test_limb_bones_are_not_fingers(name):
    assert presets.name_finger(name) is None


def test_automatic_matching_of_a_foreign_rig_with_2_bone_thumb_and_no_side_names():
    """Names in German with abbreviations, no side suffix (side from position), 2-bone thumb, end bones."""
    parents = {"Arm": None, "Unterarm": "Arm", "Hand": "Unterarm"}
    chains = {"Daumen": 2, "Zeige": 3, "Mittel": 3, "Ring": 3, "Kleiner": 3}
    for word, n in chains.items():
        p = "Hand"
        for k in range(1, n + 1):
            parents[f"{word}{k}"] = p
            p = f"{word}{k}"
        parents[f"{word}_end"] = p
    heads = {n: (-0.5, 0.0, 1.0) for n in parents}  # on the character's right (x < 0)
    m = presets.auto_match(list(parents), parents, heads)
    hand = m.hands["R"]
    assert hand.wrist == "Hand"
    assert hand.missing == ["thumb1"]
    assert hand.joints["thumb2"] == "Daumen1" and hand.joints["thumb3"] == "Daumen2"
    assert hand.joints["middle1"] == "Mittel1" and hand.joints["pinky3"] == "Kleiner3"
    assert hand.tips["index"] == "Zeige_end"
    assert "side taken from their position" in m.report()
    assert "not matched: thumb1" in m.report()


def test_rig_without_fingers_and_one_handed_rig_give_clear_reports(all_presets):
    parents = {"spine": None, "upper_arm.R": "spine", "forearm.R": "upper_arm.R", "hand.R": "forearm.R"}
    m = presets.detect(list(parents), parents)
    assert m.n_found == 0
    text = m.report()
    assert "right hand: no finger bones found" in text and "No usable hand" in text
    names, parents = preset_rig(all_presets["vrm"], sides=("R",))
    m = presets.detect(names, parents)
    assert m.hands["R"].usable and not m.hands["L"].joints
    assert "left hand: no finger bones found" in m.report()


def test_rigify_control_chain_is_preferred_over_deform_chain():
    """Generated Rigify hierarchy (names and parents as Blender 5.0 builds them), automatic matching."""
    parents = {"DEF-hand.R": None, "ORG-palm.01.R": "DEF-hand.R"}
    for f in ("f_index", "thumb"):
        parents[f"DEF-{f}.01.R"] = "ORG-palm.01.R"
        parents[f"DEF-{f}.02.R"] = f"DEF-{f}.01.R"
        parents[f"DEF-{f}.03.R"] = f"DEF-{f}.02.R"
        parents[f"MCH-{f}.01_drv.R"] = "ORG-palm.01.R"
        parents[f"{f}.01.R"] = f"MCH-{f}.01_drv.R"
        parents[f"MCH-{f}.02_drv.R"] = f"{f}.01.R"
        parents[f"{f}.02.R"] = f"MCH-{f}.02_drv.R"
        parents[f"MCH-{f}.03_drv.R"] = f"{f}.02.R"
        parents[f"{f}.03.R"] = f"MCH-{f}.03_drv.R"
        parents[f"{f}.01.R.001"] = f"{f}.03.R"
        parents[f"{f}.01_master.R"] = "ORG-palm.01.R"
    m = presets.auto_match(list(parents), parents)
    hand = m.hands["R"]
    assert hand.joints["index1"] == "f_index.01.R" and hand.joints["thumb3"] == "thumb.03.R"
    assert hand.tips["index"] == "f_index.01.R.001"
    assert hand.wrist == "ORG-palm.01.R"  # the nearest common parent of the chains found


def test_saved_preset_round_trips(all_presets, tmp_path):
    names, parents = preset_rig(all_presets["unreal"])
    m = presets.detect(names, parents, "unreal")
    path = presets.save_preset(m, "my_rig", tmp_path, label="My rig")
    loaded = presets.load_presets([tmp_path])
    assert "my_rig" in loaded and loaded["my_rig"].label == "My rig"
    m2 = presets.detect(names, parents, "my_rig", extra_dirs=[tmp_path])
    for side in "RL":
        assert m2.hands[side].joints == m.hands[side].joints
        assert m2.hands[side].wrist == m.hands[side].wrist
        assert m2.hands[side].metacarpals == m.hands[side].metacarpals
    assert not list(tmp_path.glob("*.tmp")) and path.name == "my_rig.toml"
    with pytest.raises(presets.PresetError, match="letters, digits"):
        presets.save_preset(m, "bad name/..", tmp_path)


def test_malformed_preset_names_the_file_and_the_fix(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "broken"\nsides = { R = "R" }\nwrist = "hand.{S}"\n[fingers]\nthumb = ["a", "b"]\n')
    with pytest.raises(presets.PresetError, match=r"broken\.toml.*thumb.*3 entries"):
        presets.load_presets([tmp_path])
    with pytest.raises(presets.PresetError, match="no retarget preset named 'nope'"):
        presets.detect(["a"], {"a": None}, "nope")


# --------------------------------------------------------------------------------------------
# Hand frames and the transfer maths
# --------------------------------------------------------------------------------------------

def _rot(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def test_hand_frame_is_mirrored_between_sides():
    w, i, m, p = np.zeros(3), np.array([-0.09, 0.0, 0.02]), np.array([-0.095, 0.0, 0.0]), np.array([-0.08, 0.0, -0.04])
    H = handframe.hand_frame(w, i, m, p, "R")
    assert np.allclose(H.T @ H, np.eye(3)) and np.isclose(np.linalg.det(H), 1)
    mirror = np.diag([-1.0, 1.0, 1.0])
    HL = handframe.hand_frame(*(mirror @ v for v in (w, i, m, p)), "L")
    assert np.isclose(np.linalg.det(HL), -1)
    assert np.allclose(HL, mirror @ H)  # the same anatomical axes, mirrored
    with pytest.raises(ValueError, match="wrist"):
        handframe.hand_frame(w, i, w, p, "R")


def test_transfer_reproduces_a_curl_on_a_rotated_rolled_and_mirrored_hand():
    rng = np.random.default_rng(0)
    Hs = handframe.hand_frame(np.zeros(3), [1, 0.2, 0], [1, 0, 0], [1, -0.2, 0], "R")
    # Source bone: random rest, rotated by a curl about the hand's curl axis (-across) by 40°.
    S_rest = _rot(rng.normal(size=3), 1.0)
    D_true = _rot([0, -1, 0], np.radians(40))  # hand-frame coordinates
    S_pose = Hs @ D_true @ Hs.T @ S_rest
    D = handframe.source_delta(S_pose, S_rest, Hs, Hs)
    assert np.allclose(D, D_true)
    # Target: a left hand, turned and with a different roll; wrist turned by W.
    R0 = _rot([0.3, 1, -0.2], 2.0)
    Ht = R0 @ np.diag([-1.0, 1, 1]) @ Hs  # mirror image, then turned
    Ht = handframe.hand_frame(np.zeros(3), Ht[:, 0] + 0.2 * Ht[:, 1], Ht[:, 0], Ht[:, 0] - 0.2 * Ht[:, 1], "L")
    T_rest = _rot(rng.normal(size=3), 2.0)
    W = _rot([1, 1, 0], 0.5)
    T_pose = handframe.target_rotation(D, T_rest, W @ Ht, Ht)
    # Relative to its (turned) hand, the target bone turned by the mirrored curl: about -across too.
    rel = Ht.T @ W.T @ T_pose @ T_rest.T @ Ht
    assert np.allclose(rel, D_true, atol=1e-9)
    assert np.isclose(np.linalg.det(T_pose), 1)


def test_chain_transfer_keeps_a_rigid_finger_rigid_and_maps_joint_axes():
    D1 = _rot([0, 0, 1], 0.3)  # spread at the knuckle
    D = np.stack([D1, D1, D1])  # the rest of the finger follows rigidly
    M = np.stack([np.eye(3), _rot([0, 1, 0], 0.4), _rot([0, 1, 0], 0.6)])
    out = handframe.chain_transfer(D, M)
    assert np.allclose(out[0], D1) and np.allclose(out[1], D1) and np.allclose(out[2], D1)
    # A joint rotation (second bone) is re-expressed about the target's axes.
    D = np.stack([np.eye(3), _rot([0, -1, 0], 0.5), _rot([0, -1, 0], 0.5)])
    out = handframe.chain_transfer(D, M)
    assert np.allclose(out[1], M[1] @ D[1] @ M[1].T)
    assert np.allclose(out[2], out[1])


def test_segment_frame_and_direction_change():
    H = np.eye(3)
    G = handframe.segment_frame([1, 0, 0], H)
    assert np.allclose(G, np.eye(3))
    G = handframe.segment_frame([1, 0, 1], H)
    assert np.isclose(np.linalg.det(G), 1) and np.allclose(G[:, 0], np.array([1, 0, 1]) / np.sqrt(2))
    ang, axis = handframe.direction_change([[1, 0, 0], [1, 0, 0]], [[0, 1, 0], [2, 0, 0]])
    assert np.allclose(ang, [np.pi / 2, 0]) and np.allclose(axis, [[0, 0, 1], [0, 0, 0]])


def test_axis_correction_turns_the_transferred_rotation():
    C = handframe.euler_xyz_deg([0, 0, 90])
    assert np.allclose(C, _rot([0, 0, 1], np.pi / 2))
    assert np.allclose(handframe.euler_xyz_deg([30, -20, 10]),
                       _rot([0, 0, 1], np.radians(10)) @ _rot([0, 1, 0], np.radians(-20)) @ _rot([1, 0, 0], np.radians(30)))
    D = _rot([0, -1, 0], 0.7)  # a curl about -across
    out = handframe.target_rotation(D, np.eye(3), np.eye(3), np.eye(3), correction=C)
    assert np.allclose(out, _rot([1, 0, 0], 0.7))  # the curl axis turned by 90° about the palm normal
