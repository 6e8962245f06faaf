"""Dataset readers parse small fixtures laid out exactly like FreiHAND, HO3D v2/v3 and HanCo; their labels
follow each dataset's convention (fingertips, joint order, axes, θ) and agree with the hand model; crops
follow the shared policy; the augmentation moves labels with the pixels."""
from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest
torch = pytest.importorskip("torch")

from dahyf.hand.model import load_hand_model
from dahyf.hand.tables import KEYPOINT_CONVENTIONS, KEYPOINT_SOURCES
from dahyf.train import datasets as D
from dahyf.train.augment import Augmentation

K_FREIHAND = np.array([[480.0, 0, 110.0], [0, 482.0, 115.0], [0, 0, 1]])


@pytest.fixture(scope="module")
def mano(mano_like):
    return load_hand_model(str(mano_like), "right")


def _posed(hand, seed, convention, transl=(0.01, -0.02, 0.55)):
    """θ (flat), β and the posed model with a dataset's fingertips: keypoints (21, 3), joints (16, 3), verts."""
    g = torch.Generator().manual_seed(seed)
    pose = 0.3 * torch.randn(1, 16, 3, generator=g)
    betas = 0.5 * torch.randn(1, 10, generator=g)
    with torch.no_grad():
        out = hand(pose, betas, torch.tensor([transl]))
    tips = out.vertices[0, list(KEYPOINT_CONVENTIONS[convention].tip_vertex_ids)]
    kp = torch.cat([out.joints[0], tips])[list(KEYPOINT_SOURCES)]
    return pose[0].double().numpy(), betas[0].double().numpy(), kp.double().numpy(), out


def _dot_image(uv, size=(224, 224), joint=0):
    img = np.zeros((size[1], size[0], 3), np.uint8)
    cv2.circle(img, (int(round(uv[joint, 0])), int(round(uv[joint, 1]))), 4, (255, 255, 255), -1)
    return img


def _write_freihand(root, hand, split, n_ann, n_img):
    Ks, xyzs, manos, verts = [], [], [], []
    hm = hand.arrays()["hands_mean"]
    for i in range(n_ann):
        pose, betas, xyz, out = _posed(hand, i, "freihand")
        mano_pose = pose.reshape(-1).copy()
        mano_pose[3:] -= hm  # FreiHAND stores θ with flat_hand_mean=False
        Ks.append(K_FREIHAND.tolist())
        xyzs.append(xyz.tolist())
        manos.append([list(mano_pose) + list(betas) + [0.01, -0.02, 0.55]])
        verts.append(out.vertices[0].numpy().tolist())
    (root / split / "rgb").mkdir(parents=True)
    for name, data in (("K", Ks), ("xyz", xyzs), ("mano", manos), ("verts", verts), ("scale", [0.03] * n_ann)):
        (root / f"{split}_{name}.json").write_text(json.dumps(data))
    for idx in range(n_img):
        uv = D.project(np.asarray(xyzs[idx % n_ann]), K_FREIHAND)
        cv2.imwrite(str(root / split / "rgb" / f"{idx:08d}.jpg"), _dot_image(uv))
    return np.asarray(xyzs), np.asarray(manos)


def test_freihand_labels_agree_with_mano_under_freihands_convention(tmp_path, mano):
    root = tmp_path / "FreiHAND_pub_v2"
    xyz, manos = _write_freihand(root, mano, "training", n_ann=2, n_img=4)  # 2 annotations × 2 colour versions
    ds = D.FreiHAND(root, "training", hand_model=mano.name)
    assert len(ds) == 4
    s = ds[3]  # image 3 → annotation 1
    np.testing.assert_allclose(s["joints3d"], xyz[1], atol=1e-6)
    np.testing.assert_allclose(s["joints2d_img"], D.project(xyz[1], K_FREIHAND), atol=1e-3)
    np.testing.assert_allclose(s["image_size"], [220.0, 230.0])  # principal point (110, 115) at the centre
    assert s["focal"] == pytest.approx(481.0)
    # θ back in the flat convention (MANO's hands_mean added), and θ, β reproduce the 3-D joints
    with torch.no_grad():
        out = mano(torch.from_numpy(s["pose"][None]).double(), torch.from_numpy(s["betas"][None]).double(),
                   torch.tensor([[0.01, -0.02, 0.55]], dtype=torch.float64))
    fh_tips = torch.cat([out.joints[0], out.vertices[0, list(KEYPOINT_CONVENTIONS["freihand"].tip_vertex_ids)]])
    np.testing.assert_allclose(fh_tips[list(KEYPOINT_SOURCES)].numpy(), s["joints3d"], atol=2e-5)
    # … and only with FreiHAND's fingertips: smplx's ring / pinky tips (554 / 671) are other vertices
    assert np.abs(out.keypoints[0].numpy() - s["joints3d"])[[16, 20]].max() > 1e-4
    img = s["image"].transpose(1, 2, 0) * np.array([0.229, 0.224, 0.225]) + np.array([0.485, 0.456, 0.406])
    u, v = np.round(s["joints2d"][0]).astype(int)
    assert img[v, u].mean() > 0.8 and img.mean() < 0.2  # the crop shows the wrist dot where joints2d says
    box = s["box"]
    np.testing.assert_allclose((s["joints2d_img"] - (box[:2] - box[2] / 2)) * 224 / box[2], s["joints2d"], atol=1e-3)
    assert s["is_hand"] == 1 and s["has_mano"] == 1 and s["has_joints3d"] == 1
    with pytest.raises(D.DatasetLayoutError, match="FreiHAND"):
        D.FreiHAND(tmp_path / "nothing", "training")


def test_mano_labels_refuse_the_open_hand_model(tmp_path, mano):
    root = tmp_path / "FreiHAND_pub_v2"
    _write_freihand(root, mano, "training", n_ann=1, n_img=1)
    with pytest.raises(D.DatasetLabelError, match="--mano"):
        D.FreiHAND(root, "training", hand_model="open")
    assert D.FreiHAND(root, "training")[0]["has_mano"] == 0  # no MANO model named: no MANO labels


def test_crops_follow_the_shared_policy(tmp_path, mano):
    from dahyf.capture.crops import hand_boxes

    root = tmp_path / "FreiHAND_pub_v2"
    xyz, _ = _write_freihand(root, mano, "training", n_ann=1, n_img=1)
    _write_freihand(root, mano, "evaluation", n_ann=1, n_img=1)
    uv = D.project(xyz[0], K_FREIHAND)
    np.testing.assert_allclose(D.FreiHAND(root, "training")[0]["box"], hand_boxes(uv[None])[0], rtol=1e-6)
    detected = np.array([[100.0, 120.0, 90.0]])  # a detector's box wins over the annotation
    np.testing.assert_allclose(D.FreiHAND(root, "evaluation", boxes=detected)[0]["box"], detected[0])


def test_augmentation_moves_labels_with_the_pixels(tmp_path, mano):
    root = tmp_path / "FreiHAND_pub_v2"
    _write_freihand(root, mano, "training", n_ann=1, n_img=1)
    ds = D.FreiHAND(root, "training", augment=Augmentation(rotation_deg=40, p_rotate=1.0, colour=0.0), seed=3)
    for seed in range(3):
        ds.seed = seed
        torch.manual_seed(seed)  # the augmentation also draws from torch's RNG (a new draw each epoch)
        s = ds[0]
        img = s["image"].transpose(1, 2, 0) * np.array([0.229, 0.224, 0.225]) + np.array([0.485, 0.456, 0.406])
        u, v = np.round(s["joints2d"][0]).astype(int)
        assert img[v, u].mean() > 0.6
        # the rotated 3-D joints project close to the rotated 2-D joints (rotation about the box-centre ray)
        err = np.linalg.norm(D.project(s["joints3d"].astype(np.float64), K_FREIHAND) - s["joints2d_img"], axis=1).max()
        assert err < 0.03 * s["box"][2]


def test_augmentation_differs_between_epochs_and_is_reproducible(tmp_path, mano):
    root = tmp_path / "FreiHAND_pub_v2"
    _write_freihand(root, mano, "training", n_ann=1, n_img=1)
    ds = D.FreiHAND(root, "training", augment=Augmentation(), seed=3)
    torch.manual_seed(0)
    first, second = ds[0]["box"], ds[0]["box"]  # the same sample read in two epochs
    assert not np.allclose(first, second)
    torch.manual_seed(0)
    assert np.allclose(ds[0]["box"], first)


def _ho3d_meta(hand, seed, K):
    pose, betas, kp, out = _posed(hand, seed, "ho3d")
    tips = out.vertices[0, list(KEYPOINT_CONVENTIONS["ho3d"].tip_vertex_ids)].double().numpy()
    stored = np.concatenate([out.joints[0].double().numpy(), tips])  # HO3D: 16 MANO joints, then the tips
    gl = stored * np.array([1.0, -1.0, -1.0])  # OpenGL axes
    meta = {"handJoints3D": gl, "handPose": pose.reshape(-1), "handBeta": betas, "handTrans": np.zeros(3),
            "camMat": K, "objName": "003_cracker_box", "objRot": np.zeros((3, 1))}
    return meta, kp, pose


@pytest.mark.parametrize("version,ext", [(2, ".png"), (3, ".jpg")])
def test_ho3d_layout_convention_and_restricted_meta_pickles(tmp_path, mano, version, ext):
    root = tmp_path / f"HO3D_v{version}"
    K = np.array([[614.0, 0, 320.0], [0, 614.0, 240.0], [0, 0, 1]])
    (root / "train" / "SEQ1" / "rgb").mkdir(parents=True)
    (root / "train" / "SEQ1" / "meta").mkdir(parents=True)
    (root / "train.txt").write_text("SEQ1/0000\nSEQ1/0001\n")
    expected = []
    for i in range(2):
        # the hand posed in OpenGL coordinates: the stored global orientation is the OpenGL one
        meta, kp, pose = _ho3d_meta(mano, i, K)
        expected.append((kp, pose))
        (root / "train" / "SEQ1" / "meta" / f"{i:04d}.pkl").write_bytes(pickle.dumps(meta, protocol=2))
        cv2.imwrite(str(root / "train" / "SEQ1" / "rgb" / f"{i:04d}{ext}"), np.zeros((480, 640, 3), np.uint8))
    ds = D.HO3D(root, "train", hand_model=mano.name)
    assert len(ds) == 2
    s = ds[1]
    kp, pose = expected[1]
    np.testing.assert_allclose(s["joints3d"], kp, atol=1e-5)  # reordered, OpenCV axes
    np.testing.assert_allclose(s["joints2d_img"], D.project(kp, K), atol=1e-2)
    np.testing.assert_allclose(s["pose"][1:], pose[1:], atol=1e-6)  # full rotations: no hands_mean added
    # the OpenCV global orientation poses the hand as OpenGL's did, seen in OpenCV axes
    with torch.no_grad():
        a = mano(torch.from_numpy(s["pose"][None]).double(), torch.from_numpy(s["betas"][None]).double())
        b = mano(torch.from_numpy(pose[None]).double(), torch.from_numpy(s["betas"][None]).double())
    rel = lambda o: (o.joints[0] - o.joints[0, :1]).numpy()  # noqa: E731
    np.testing.assert_allclose(rel(a), rel(b) * np.array([1.0, -1.0, -1.0]), atol=1e-6)
    with pytest.raises(D.DatasetLabelError, match="--mano"):
        D.HO3D(root, "train", hand_model="open")
    # evaluation split: hand box only, cropped by the shared policy (1.5 × its longer side)
    (root / "evaluation" / "SEQ2" / "rgb").mkdir(parents=True)
    (root / "evaluation" / "SEQ2" / "meta").mkdir(parents=True)
    (root / "evaluation.txt").write_text("SEQ2/0000\n")
    ev_meta = {"handJoints3D": np.array([0.0, 0.0, -0.5]), "handBoundingBox": np.array([300.0, 200.0, 380.0, 300.0]),
               "camMat": K, "handPose": None, "handBeta": None}
    (root / "evaluation" / "SEQ2" / "meta" / "0000.pkl").write_bytes(pickle.dumps(ev_meta))
    cv2.imwrite(str(root / "evaluation" / "SEQ2" / "rgb" / f"0000{ext}"), np.zeros((480, 640, 3), np.uint8))
    e = D.HO3D(root, "evaluation")[0]
    np.testing.assert_allclose(e["box"], [340.0, 250.0, 150.0])
    assert e["has_joints3d"] == 0


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_ho3d_meta_reader_refuses_code(tmp_path):
    bad = tmp_path / "0000.pkl"
    bad.write_bytes(pickle.dumps({"camMat": _Evil()}))
    with pytest.raises(D.DatasetLayoutError, match="refused to load global"):
        D.load_ho3d_meta(bad)


def _write_hanco(root, frames, size=64):
    K = np.array([[300.0, 0, 112.0], [0, 300.0, 112.0], [0, 0, 1]])
    # a hand occupying the right part of the image
    xyz = np.array([[0.08 + 0.01 * (i % 4), -0.05 + 0.005 * i, 0.5] for i in range(21)])
    for seq, frame in frames:
        for sub in ("rgb/" + seq + "/cam0", "calib/" + seq, "xyz/" + seq):
            (root / sub).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "rgb" / seq / "cam0" / f"{frame}.jpg"), np.full((size, size, 3), 90, np.uint8))
        (root / "calib" / seq / f"{frame}.json").write_text(json.dumps({"K": [K.tolist()] * 8, "M": [np.eye(4).tolist()] * 8}))
        (root / "xyz" / seq / f"{frame}.json").write_text(json.dumps(xyz.tolist()))
    return K, xyz


def test_hanco_gives_hand_crops_and_crops_beside_the_hand(tmp_path):
    root = tmp_path / "HanCo"
    K, xyz = _write_hanco(root, [("0000", "00000000"), ("0000", "00000001")], size=224)
    neg = D.HanCoNegatives(root, cameras=(0,))
    assert len(neg) == 2 and neg.num_negatives == 2
    s = neg[0]
    assert s["is_hand"] == 0 and s["has_joints3d"] == 0 and s["has_mano"] == 0
    uv = D.project(xyz, K)
    cx, cy, side = s["box"]
    assert cx + side / 2 <= uv[:, 0].min() + 1e-6  # entirely left of the hand
    pos = D.HanCoPositives(root, cameras=(0,))
    p = pos[0]
    assert pos.num_negatives == 0 and p["is_hand"] == 1 and p["has_joints3d"] == 1 and p["has_mano"] == 0
    np.testing.assert_allclose(p["joints3d"], xyz, atol=1e-6)
    np.testing.assert_allclose(p["box"], D.joints_box(uv), rtol=1e-6)
    with pytest.raises(D.DatasetLayoutError, match="HanCo"):
        D.HanCoNegatives(tmp_path)


def test_hanco_crops_are_capped_and_spread_over_the_set(tmp_path):
    from dahyf.train.net_command import build_dataset

    root = tmp_path / "HanCo"
    _write_hanco(root, [(seq, f"{i:08d}") for seq in ("0000", "0001", "0002") for i in range(4)])
    ds = D.HanCoNegatives(root, cameras=(0,), max_items=3)
    assert len(ds) == 3 and {seq for seq, _, _ in ds.items} == {"0000", "0001", "0002"}
    # training: one hand crop and one non-hand crop per 8 samples, not the whole of HanCo
    hand = load_hand_model("open", "right")
    train_ds = build_dataset("synthetic", "synthetic", False, 0, hand=hand, synthetic_size=16, hanco=root)
    assert len(train_ds) == 18 + 2 + 2 and D.count_negatives(train_ds) == 2 + 2
