"""`dahyf predict` runs an image checkpoint over a FreiHAND-layout evaluation split and writes the competition
file; the HO3D writer's file round-trips through the official HO3D scoring (re-implemented here from its
published eval.py and FreiHAND's EvalUtil) to the metrics of our own convention."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
torch = pytest.importorskip("torch")

from dahyf.cli import main
from dahyf.hand.model import load_hand_model
from dahyf.hand.tables import KEYPOINT_CONVENTIONS, KEYPOINT_SOURCES
from dahyf.net.dahyf_net import DaHyF, DaHyFConfig, save_dahyf
from dahyf.train.predict import to_ho3d, write_ho3d


def test_predict_writes_freihand_predictions_and_scores_them(tmp_path, capsys):
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
    ckpt = save_dahyf(tmp_path / "m.pt", DaHyF(DaHyFConfig(backbone="light", regressor_width=32, regressor_depth=1), hand=hand))
    pred = tmp_path / "pred.json"
    rc = main(["predict", "--data", str(root), "--out", str(pred), "--checkpoint", str(ckpt), "--device", "cpu", "--score"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 2 and report["detected"] == 0  # no hand drawn: the whole image is the crop
    assert report["metrics"]["num_samples"] == 2
    xyz_pred, verts_pred = json.loads(pred.read_text())
    assert np.asarray(xyz_pred).shape == (2, 21, 3) and verts_pred == []  # open model: not MANO topology
    out = tmp_path / "metrics.json"
    assert main(["eval", "--data", str(root), "--pred", str(pred), "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    assert m["num_samples"] == 2 and m["pa_mpjpe_mm"] > 0 and "pa_mpvpe_mm" not in m
    # an HO3D prediction needs a checkpoint that predicts HO3D's fingertips
    (tmp_path / "HO3D_v3").mkdir()
    (tmp_path / "HO3D_v3" / "evaluation.txt").write_text("")
    rc = main(["predict", "--dataset", "ho3d", "--data", str(tmp_path / "HO3D_v3"), "--out", str(tmp_path / "p.json"),
               "--checkpoint", str(ckpt), "--device", "cpu"])
    assert rc == 2 and "paper_ho3d" in capsys.readouterr().err


# --- the official HO3D scoring, from its eval.py (shreyashampali/ho3d) and FreiHAND's EvalUtil ----------------
def _official_align_sc_tr(gt, pred):
    s = np.sqrt(np.sum(np.square(pred[4] - pred[0])))
    p = pred / s if s > 0 else pred.copy()
    p = p * np.sqrt(np.sum(np.square(gt[4] - gt[0])))
    return p - p[0:1] + gt[0:1]


def _official_align_w_scale(gt, pred):
    from scipy.linalg import orthogonal_procrustes

    t1, t2 = gt.mean(0), pred.mean(0)
    g, p = gt - t1, pred - t2
    s1, s2 = np.linalg.norm(g) + 1e-8, np.linalg.norm(p) + 1e-8
    g, p = g / s1, p / s2
    R, s = orthogonal_procrustes(g, p)
    return np.dot(p, R.T) * s * s1 + t1


def _official_mean_and_auc(gts, preds):
    """EvalUtil.get_measures(0, 0.05, 100): per keypoint mean error and AUC, then averaged over keypoints."""
    err = np.linalg.norm(np.asarray(gts) - np.asarray(preds), axis=-1)  # (S, K)
    t = np.linspace(0.0, 0.05, 100)
    trapz = getattr(np, "trapezoid", None) or np.trapz   # the official code's np.trapz (renamed in numpy 2)
    norm = trapz(np.ones_like(t), t)
    aucs = [trapz([np.mean((err[:, k] <= th).astype(float)) for th in t], t) / norm for k in range(err.shape[1])]
    return float(np.mean(err.mean(0))), float(np.mean(aucs))


def _official_fscore(gt, pr, th):
    from scipy.spatial import cKDTree

    d1 = cKDTree(pr).query(gt)[0]  # each gt point → prediction
    d2 = cKDTree(gt).query(pr)[0]
    recall, precision = float(np.mean(d2 < th)), float(np.mean(d1 < th))
    return 2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0


def official_ho3d_scores(gt_dir, pred_file) -> dict:
    xyz_gt = json.loads((gt_dir / "evaluation_xyz.json").read_text())
    verts_gt = json.loads((gt_dir / "evaluation_verts.json").read_text())
    pred = json.loads(pred_file.read_text())
    assert len(pred) == 2 and len(pred[0]) == len(xyz_gt) and len(pred[1]) == len(xyz_gt)
    sc_tr, pa, mesh_pa, f5, f15 = [], [], [], [], []
    for xyz, verts, xp, vp in zip(xyz_gt, verts_gt, pred[0], pred[1]):
        xyz, verts, xp, vp = (np.array(a) for a in (xyz, verts, xp, vp))
        assert not np.all(xp[:, 2] > 0), "not in OpenGL coordinates (HO3D's pred.py check)"
        sc_tr.append(_official_align_sc_tr(xyz, xp))
        pa.append(_official_align_w_scale(xyz, xp))
        mesh_pa.append(_official_align_w_scale(verts, vp))
        f5.append(_official_fscore(verts, mesh_pa[-1], 0.005))
        f15.append(_official_fscore(verts, mesh_pa[-1], 0.015))
    out = {}
    out["xyz_procrustes_al_mean3d"], out["xyz_procrustes_al_auc3d"] = _official_mean_and_auc(xyz_gt, pa)
    out["xyz_scale_trans_al_mean3d"], out["xyz_scale_trans_al_auc3d"] = _official_mean_and_auc(xyz_gt, sc_tr)
    out["mesh_al_mean3d"], _ = _official_mean_and_auc(verts_gt, mesh_pa)
    out["f_al_score_5"], out["f_al_score_15"] = float(np.mean(f5)), float(np.mean(f15))
    return out


def test_ho3d_submission_round_trips_through_the_official_scoring(tmp_path, mano_like):
    from dahyf.eval.commands import evaluate_files
    from dahyf.eval.metrics import evaluate_ho3d

    mano = load_hand_model(str(mano_like), "right")
    g = torch.Generator().manual_seed(0)
    S = 4
    with torch.no_grad():
        gt = mano(0.3 * torch.randn(S, 16, 3, generator=g), 0.5 * torch.randn(S, 10, generator=g), torch.tensor([[0.0, 0.05, 0.6]] * S))
        pr = mano(0.3 * torch.randn(S, 16, 3, generator=g), 0.5 * torch.randn(S, 10, generator=g), torch.tensor([[0.02, 0.03, 0.65]] * S))
    tips = list(KEYPOINT_CONVENTIONS["ho3d"].tip_vertex_ids)
    kp = lambda o: torch.cat([o.joints, o.vertices[:, tips]], 1)[:, list(KEYPOINT_SOURCES)].double().numpy()  # noqa: E731
    gt_xyz, gt_verts, pr_xyz, pr_verts = kp(gt), gt.vertices.double().numpy(), kp(pr), pr.vertices.double().numpy()
    # the ground truth as HO3D keeps it: 16 MANO joints then the tips, OpenGL axes
    gj, gv = to_ho3d(gt_xyz, gt_verts)
    np.testing.assert_allclose(gj[:, :16], (gt.joints.double().numpy() * [1, -1, -1]), atol=1e-12)
    (tmp_path / "evaluation_xyz.json").write_text(json.dumps(gj.tolist()))
    (tmp_path / "evaluation_verts.json").write_text(json.dumps(gv.tolist()))
    pred = write_ho3d(tmp_path / "pred.json", pr_xyz, pr_verts)
    official = official_ho3d_scores(tmp_path, pred)
    ours = evaluate_files("ho3d", tmp_path, pred)  # `dahyf eval --dataset ho3d` on the same two files
    mine = evaluate_ho3d(gt_xyz, pr_xyz, gt_verts, pr_verts)  # and on our own convention's arrays
    for m in (ours, mine):
        assert m["pa_mpjpe_mm"] == pytest.approx(official["xyz_procrustes_al_mean3d"] * 1000, rel=1e-9)
        assert m["auc_joints"] == pytest.approx(official["xyz_procrustes_al_auc3d"], rel=1e-9)
        assert m["mpjpe_sc_tr_mm"] == pytest.approx(official["xyz_scale_trans_al_mean3d"] * 1000, rel=1e-9)
        assert m["auc_joints_sc_tr"] == pytest.approx(official["xyz_scale_trans_al_auc3d"], rel=1e-9)
        assert m["pa_mpvpe_mm"] == pytest.approx(official["mesh_al_mean3d"] * 1000, rel=1e-9)
        assert m["f5"] == pytest.approx(official["f_al_score_5"], rel=1e-9)
        assert m["f15"] == pytest.approx(official["f_al_score_15"], rel=1e-9)
    assert official["xyz_scale_trans_al_mean3d"] > 0.001  # a real error, not a trivially perfect match
    with pytest.raises(ValueError, match="778"):
        write_ho3d(tmp_path / "x.json", pr_xyz, pr_verts[:, :500])
