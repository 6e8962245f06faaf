"""`dahyf eval --checkpoint` runs an image checkpoint over a FreiHAND-layout evaluation split and scores it."""
from __future__ import annotations

import json

import cv2
import numpy as np
import torch

from dahyf.cli import main
from dahyf.hand.model import load_hand_model
from dahyf.net.dahyf_net import DaHyF, DaHyFConfig, save_dahyf


def test_eval_with_checkpoint_writes_competition_predictions(tmp_path):
    hand = load_hand_model("open", "right")
    root = tmp_path / "FreiHAND_pub_v2_eval"
    (root / "evaluation" / "rgb").mkdir(parents=True)
    K = np.array([[480.0, 0, 112.0], [0, 480.0, 112.0], [0, 0, 1]])
    xyz = []
    for i in range(2):
        with torch.no_grad():
            kp = hand(0.2 * torch.randn(1, 16, 3), None, torch.tensor([[0.0, 0.0, 0.6]])).keypoints[0].numpy()
        xyz.append(kp.tolist())
        cv2.imwrite(str(root / "evaluation" / "rgb" / f"{i:08d}.jpg"), np.full((224, 224, 3), 40 * i, np.uint8))
    (root / "evaluation_K.json").write_text(json.dumps([K.tolist()] * 2))
    (root / "evaluation_xyz.json").write_text(json.dumps(xyz))
    ckpt = save_dahyf(tmp_path / "m.pt", DaHyF(DaHyFConfig(backbone="light", hidden=(32,)), hand=hand))
    pred, out = tmp_path / "pred.json", tmp_path / "metrics.json"
    rc = main(["eval", "--data", str(root), "--pred", str(pred), "--checkpoint", str(ckpt), "--device", "cpu",
               "--out", str(out)])
    assert rc == 0
    xyz_pred, verts_pred = json.loads(pred.read_text())
    assert np.asarray(xyz_pred).shape == (2, 21, 3) and verts_pred == []  # open model: not MANO topology
    m = json.loads(out.read_text())
    assert m["num_samples"] == 2 and m["pa_mpjpe_mm"] > 0 and "pa_mpvpe_mm" not in m
