"""Dataset readers parse small fixtures laid out exactly like FreiHAND, HO3D v2/v3 and HanCo, and the
augmentation moves labels with the pixels."""
from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest
import torch

from dahyf.hand.model import load_hand_model
from dahyf.train import datasets as D


@pytest.fixture(scope="module")
def hand():
    return load_hand_model("open", "right")


def _posed(hand, seed=0, transl=(0.01, -0.02, 0.55)):
    g = torch.Generator().manual_seed(seed)
    pose = 0.3 * torch.randn(1, 16, 3, generator=g)
    betas = 0.5 * torch.randn(1, 10, generator=g)
    with torch.no_grad():
        out = hand(pose, betas, torch.tensor([transl]))
    return pose[0].numpy().astype(np.float64), betas[0].numpy().astype(np.float64), out


def _dot_image(uv, size=(224, 224), joint=0):
    img = np.zeros((size[1], size[0], 3), np.uint8)
    cv2.circle(img, (int(round(uv[joint, 0])), int(round(uv[joint, 1]))), 4, (255, 255, 255), -1)
    return img


def _write_freihand(root, hand, split, n_ann, n_img):
    K = np.array([[480.0, 0, 110.0], [0, 482.0, 115.0], [0, 0, 1]])
    Ks, xyzs, manos, verts = [], [], [], []
    hm = hand.arrays()["hands_mean"]
    for i in range(n_ann):
        pose, betas, out = _posed(hand, seed=i)
        xyz = out.keypoints[0].numpy().astype(np.float64)
        mano_pose = pose.reshape(-1).copy()
        mano_pose[3:] -= hm  # FreiHAND stores θ with flat_hand_mean=False
        Ks.append(K.tolist())
        xyzs.append(xyz.tolist())
        manos.append([list(mano_pose) + list(betas) + [0.01, -0.02, 0.55]])
        verts.append(out.vertices[0].numpy().tolist())
    (root / split / "rgb").mkdir(parents=True)
    for name, data in (("K", Ks), ("xyz", xyzs), ("mano", manos), ("verts", verts), ("scale", [0.03] * n_ann)):
        (root / f"{split}_{name}.json").write_text(json.dumps(data))
    for idx in range(n_img):
        uv = D.project(np.asarray(xyzs[idx % n_ann]), K)
        cv2.imwrite(str(root / split / "rgb" / f"{idx:08d}.jpg"), _dot_image(uv))
    return K, np.asarray(xyzs), np.asarray(manos)


def test_freihand_training_and_evaluation_layouts(tmp_path, hand):
    root = tmp_path / "FreiHAND_pub_v2"
    K, xyz, mano = _write_freihand(root, hand, "training", n_ann=2, n_img=4)  # 2 annotations × 2 colour versions
    _write_freihand(root, hand, "evaluation", n_ann=1, n_img=1)
    ds = D.FreiHAND(root, "training")
    assert len(ds) == 4
    s = ds[3]  # image 3 → annotation 1
    np.testing.assert_allclose(s["joints3d"], xyz[1], atol=1e-6)
    np.testing.assert_allclose(s["joints2d_img"], D.project(xyz[1], K), atol=1e-3)
    np.testing.assert_allclose(s["image_size"], [220.0, 230.0])  # principal point (110, 115) at the centre
    assert s["focal"] == pytest.approx(481.0)
    # θ converted to the flat_hand_mean convention
    expect = mano[1, 0, :48].reshape(16, 3).copy()
    expect[1:] += hand.arrays()["hands_mean"].reshape(15, 3)
    np.testing.assert_allclose(s["pose"], expect, atol=1e-5)
    np.testing.assert_allclose(s["betas"], mano[1, 0, 48:58], atol=1e-6)
    # the crop shows the wrist dot where joints2d says
    img = s["image"].transpose(1, 2, 0) * np.array([0.229, 0.224, 0.225]) + np.array([0.485, 0.456, 0.406])
    u, v = np.round(s["joints2d"][0]).astype(int)
    assert img[v, u].mean() > 0.8 and img.mean() < 0.2
    box = s["box"]
    np.testing.assert_allclose((s["joints2d_img"] - (box[:2] - box[2] / 2)) * 224 / box[2], s["joints2d"], atol=1e-3)
    assert s["is_hand"] == 1 and s["has_mano"] == 1 and s["has_joints3d"] == 1
    ev = D.FreiHAND(root, "evaluation")
    assert len(ev) == 1 and ev[0]["joints3d"].shape == (21, 3)
    # evaluation crops the whole image: the ground truth never places the box
    h, w = cv2.imread(str(root / "evaluation" / "rgb" / "00000000.jpg")).shape[:2]
    np.testing.assert_allclose(ev[0]["box"], [w / 2, h / 2, max(w, h)])
    assert not np.allclose(D.FreiHAND(root, "evaluation", crop="joints")[0]["box"], ev[0]["box"])
    with pytest.raises(D.DatasetLayoutError, match="FreiHAND"):
        D.FreiHAND(tmp_path / "nothing", "training")


def test_augmentation_moves_labels_with_the_pixels(tmp_path, hand):
    root = tmp_path / "FreiHAND_pub_v2"
    _write_freihand(root, hand, "training", n_ann=1, n_img=1)
    ds = D.FreiHAND(root, "training", augment=D.Augmentation(rotation_deg=40, p_rotate=1.0, colour=0.0), seed=3)
    K = np.array([[480.0, 0, 110.0], [0, 482.0, 115.0], [0, 0, 1]])
    for seed in range(3):
        ds.seed = seed
        torch.manual_seed(seed)  # the augmentation also draws from torch's RNG (a new draw each epoch)
        s = ds[0]
        img = s["image"].transpose(1, 2, 0) * np.array([0.229, 0.224, 0.225]) + np.array([0.485, 0.456, 0.406])
        u, v = np.round(s["joints2d"][0]).astype(int)
        assert img[v, u].mean() > 0.6
        # the rotated 3-D joints project close to the rotated 2-D joints (rotation about the box-centre ray)
        err = np.linalg.norm(D.project(s["joints3d"].astype(np.float64), K) - s["joints2d_img"], axis=1).max()
        assert err < 0.03 * s["box"][2]


def test_augmentation_differs_between_epochs_and_is_reproducible(tmp_path, hand):
    root = tmp_path / "FreiHAND_pub_v2"
    _write_freihand(root, hand, "training", n_ann=1, n_img=1)
    ds = D.FreiHAND(root, "training", augment=D.Augmentation(), seed=3)
    torch.manual_seed(0)
    first, second = ds[0]["box"], ds[0]["box"]  # the same sample read in two epochs
    assert not np.allclose(first, second)
    torch.manual_seed(0)
    assert np.allclose(ds[0]["box"], first)


def _ho3d_meta(hand, seed, K):
    pose, betas, out = _posed(hand, seed)
    j16 = out.joints[0].numpy()
    tips = out.vertices[0, hand.tip_vertex_ids].numpy()
    ho3d_order = np.concatenate([j16, tips])  # HO3D: 16 MANO joints, then tips thumb → pinky
    gl = ho3d_order * np.array([1.0, -1.0, -1.0])  # OpenGL axes
    meta = {"handJoints3D": gl, "handPose": pose.reshape(-1), "handBeta": betas, "handTrans": np.zeros(3),
            "camMat": K, "objName": "003_cracker_box", "objRot": np.zeros((3, 1))}
    return meta, out.keypoints[0].numpy()


@pytest.mark.parametrize("version,ext", [(2, ".png"), (3, ".jpg")])
def test_ho3d_layout_with_restricted_meta_pickles(tmp_path, hand, version, ext):
    root = tmp_path / f"HO3D_v{version}"
    K = np.array([[614.0, 0, 320.0], [0, 614.0, 240.0], [0, 0, 1]])
    (root / "train" / "SEQ1" / "rgb").mkdir(parents=True)
    (root / "train" / "SEQ1" / "meta").mkdir(parents=True)
    (root / "train.txt").write_text("SEQ1/0000\nSEQ1/0001\n")
    expected = []
    for i in range(2):
        meta, kp = _ho3d_meta(hand, i, K)
        expected.append(kp)
        (root / "train" / "SEQ1" / "meta" / f"{i:04d}.pkl").write_bytes(pickle.dumps(meta, protocol=2))
        cv2.imwrite(str(root / "train" / "SEQ1" / "rgb" / f"{i:04d}{ext}"), np.zeros((480, 640, 3), np.uint8))
    ds = D.HO3D(root, "train", mano_flat_hand_mean=True)
    assert len(ds) == 2
    s = ds[1]
    np.testing.assert_allclose(s["joints3d"], expected[1], atol=1e-5)  # reordered, OpenCV axes
    np.testing.assert_allclose(s["joints2d_img"], D.project(expected[1].astype(np.float64), K), atol=1e-2)
    # evaluation split: hand box only
    (root / "evaluation" / "SEQ2" / "rgb").mkdir(parents=True)
    (root / "evaluation" / "SEQ2" / "meta").mkdir(parents=True)
    (root / "evaluation.txt").write_text("SEQ2/0000\n")
    ev_meta = {"handJoints3D": np.array([0.0, 0.0, -0.5]), "handBoundingBox": np.array([300.0, 200.0, 380.0, 300.0]),
               "camMat": K, "handPose": None, "handBeta": None}
    (root / "evaluation" / "SEQ2" / "meta" / "0000.pkl").write_bytes(pickle.dumps(ev_meta))
    cv2.imwrite(str(root / "evaluation" / "SEQ2" / "rgb" / f"0000{ext}"), np.zeros((480, 640, 3), np.uint8))
    e = D.HO3D(root, "evaluation", mano_flat_hand_mean=True)[0]
    np.testing.assert_allclose(e["box"][:2], [340.0, 250.0])
    assert e["has_joints3d"] == 0


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_ho3d_meta_reader_refuses_code(tmp_path):
    bad = tmp_path / "0000.pkl"
    bad.write_bytes(pickle.dumps({"camMat": _Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        D.load_ho3d_meta(bad)


def test_hanco_negatives_avoid_the_hand(tmp_path):
    root = tmp_path / "HanCo"
    K = np.array([[300.0, 0, 112.0], [0, 300.0, 112.0], [0, 0, 1]])
    M = np.eye(4)
    # a hand occupying the right part of the image
    xyz = np.array([[0.08 + 0.01 * (i % 4), -0.05 + 0.005 * i, 0.5] for i in range(21)])
    for seq, frame in (("0000", "00000000"), ("0000", "00000001")):
        (root / "rgb" / seq / "cam0").mkdir(parents=True, exist_ok=True)
        (root / "calib" / seq).mkdir(parents=True, exist_ok=True)
        (root / "xyz" / seq).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "rgb" / seq / "cam0" / f"{frame}.jpg"), np.full((224, 224, 3), 90, np.uint8))
        (root / "calib" / seq / f"{frame}.json").write_text(json.dumps({"K": [K.tolist()] * 8, "M": [M.tolist()] * 8}))
        (root / "xyz" / seq / f"{frame}.json").write_text(json.dumps(xyz.tolist()))
    ds = D.HanCoNegatives(root, cameras=(0,))
    assert len(ds) == 2
    s = ds[0]
    assert s["is_hand"] == 0 and s["has_joints3d"] == 0 and s["has_mano"] == 0
    uv = D.project(xyz, K)
    cx, cy, side = s["box"]
    assert cx + side / 2 <= uv[:, 0].min() + 1e-6  # entirely left of the hand
    with pytest.raises(D.DatasetLayoutError, match="HanCo"):
        D.HanCoNegatives(tmp_path)


def _write_hanco(root, frames):
    K = np.array([[300.0, 0, 112.0], [0, 300.0, 112.0], [0, 0, 1]])
    xyz = np.array([[0.08 + 0.01 * (i % 4), -0.05 + 0.005 * i, 0.5] for i in range(21)])
    for seq, frame in frames:
        for sub in ("rgb/" + seq + "/cam0", "calib/" + seq, "xyz/" + seq):
            (root / sub).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "rgb" / seq / "cam0" / f"{frame}.jpg"), np.full((64, 64, 3), 90, np.uint8))
        (root / "calib" / seq / f"{frame}.json").write_text(json.dumps({"K": [K.tolist()] * 8, "M": [np.eye(4).tolist()] * 8}))
        (root / "xyz" / seq / f"{frame}.json").write_text(json.dumps(xyz.tolist()))


def test_hanco_negatives_are_capped_and_spread_over_the_set(tmp_path, hand):
    from dahyf.train.trainer import build_dataset

    root = tmp_path / "HanCo"
    _write_hanco(root, [(seq, f"{i:08d}") for seq in ("0000", "0001", "0002") for i in range(4)])
    ds = D.HanCoNegatives(root, cameras=(0,), max_items=3)
    assert len(ds) == 3 and {seq for seq, _, _ in ds.items} == {"0000", "0001", "0002"}
    # training: one negative per 8 samples, not the whole of HanCo
    train_ds = build_dataset("synthetic", "synthetic", False, 0, hand=hand, synthetic_size=16, negatives=root)
    assert len(train_ds) == 18 + 18 // 8
