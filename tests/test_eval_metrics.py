"""FreiHAND / HO3D metrics agree with independent scipy computations, and `dahyf eval` writes them."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.spatial import procrustes
from scipy.spatial.distance import cdist
from scipy.spatial.transform import Rotation

from dahyf.eval import metrics as M


def _scipy_align(gt, pred):
    """FreiHAND's align_w_scale written with scipy.linalg.orthogonal_procrustes (the official code's call)."""
    t1, t2 = gt.mean(0), pred.mean(0)
    g, p = gt - t1, pred - t2
    s1, s2 = np.linalg.norm(g) + 1e-8, np.linalg.norm(p) + 1e-8
    R, s = orthogonal_procrustes(g / s1, p / s2)
    return ((p / s2) @ R.T) * s * s1 + t1


@pytest.mark.parametrize("seed", range(5))
def test_alignment_matches_scipy_orthogonal_procrustes(seed):
    rng = np.random.default_rng(seed)
    gt, pred = rng.normal(size=(21, 3)), rng.normal(size=(21, 3))
    np.testing.assert_allclose(M.align_w_scale(gt, pred), _scipy_align(gt, pred), atol=1e-6)
    # scipy.spatial.procrustes: same disparity (sum of squared residuals of the normalised sets)
    _, _, disparity = procrustes(gt, pred)
    a = M.align_w_scale(gt, pred)
    g = gt - gt.mean(0)
    ours = np.sum(((a - gt.mean(0)) - g) ** 2) / np.sum(g**2)
    assert ours == pytest.approx(disparity, abs=1e-6)


def test_similarity_transformed_prediction_has_zero_pa_error():
    rng = np.random.default_rng(3)
    gt = rng.normal(scale=0.05, size=(4, 21, 3))
    verts = rng.normal(scale=0.05, size=(4, 778, 3))
    R = Rotation.random(4, random_state=1).as_matrix()
    pred = np.stack([2.7 * g @ r.T + [0.1, -0.3, 0.9] for g, r in zip(gt, R)])
    pverts = np.stack([0.4 * v @ r.T + [1, 2, 3] for v, r in zip(verts, R)])
    m = M.evaluate_freihand(gt, pred, verts, pverts)
    assert m["pa_mpjpe_mm"] / 1000 < 1e-6 and m["pa_mpvpe_mm"] / 1000 < 1e-6  # metres, to 1e-6
    assert m["auc_joints"] > 0.99 and m["f5"] == 1.0 and m["f15"] == 1.0
    # ...while a different shape is not aligned away
    worse = M.evaluate_freihand(gt, pred + rng.normal(scale=0.01, size=pred.shape))
    assert worse["pa_mpjpe_mm"] > 1.0


def test_pa_mpjpe_matches_independent_computation_on_random_data():
    rng = np.random.default_rng(7)
    gt = rng.normal(scale=0.04, size=(6, 21, 3))
    pred = gt + rng.normal(scale=0.01, size=gt.shape)
    expect = np.mean([np.linalg.norm(_scipy_align(g, p) - g, axis=1).mean() for g, p in zip(gt, pred)]) * 1000
    assert M.evaluate_freihand(gt, pred)["pa_mpjpe_mm"] == pytest.approx(expect, abs=1e-6)


def test_auc_and_fscore_match_brute_force():
    rng = np.random.default_rng(11)
    err = rng.uniform(0, 0.08, size=(10, 21))
    t = np.linspace(0, 0.05, 100)
    pck = np.array([np.mean([(err[:, k] <= th).mean() for k in range(21)]) for th in t])
    expect = np.sum((pck[1:] + pck[:-1]) / 2 * np.diff(t)) / 0.05
    assert M.auc(err) == pytest.approx(expect, abs=1e-9)
    gt, pr = rng.normal(scale=0.02, size=(300, 3)), rng.normal(scale=0.02, size=(280, 3))
    d = cdist(pr, gt)
    p, r = (d.min(1) < 0.005).mean(), (d.min(0) < 0.005).mean()
    assert M.fscore(gt, pr, 0.005) == pytest.approx(2 * p * r / (p + r), abs=1e-12)


def test_ho3d_extra_metrics_and_2d_epe():
    rng = np.random.default_rng(5)
    gt = rng.normal(scale=0.04, size=(3, 21, 3))
    pred = gt * 1.3 + [0.2, 0.1, 0.0]  # scale + translation only
    m = M.evaluate_ho3d(gt, pred)
    assert m["mpjpe_sc_tr_mm"] == pytest.approx(0.0, abs=1e-6)
    assert m["mpjpe_root_mm"] > 1.0
    g2 = rng.uniform(0, 224, size=(2, 21, 2))
    assert M.epe_2d(g2, g2 + [3.0, 4.0]) == pytest.approx(5.0)


def test_ho3d_scale_translation_alignment_uses_the_wrist_to_middle_mcp_bone():
    """HO3D's align_sc_tr takes the scale from the bone keypoint 0 → 9 only: moving a fingertip moves nothing else."""
    rng = np.random.default_rng(8)
    gt = rng.normal(scale=0.04, size=(1, 21, 3))
    pred = gt * 1.3 + [0.2, 0.1, 0.0]
    pred[0, 20] += [0.013, 0.0, 0.0]  # pinky tip off by 13 mm (10 mm at the ground truth's scale)
    m = M.evaluate_ho3d(gt, pred)
    assert m["mpjpe_sc_tr_mm"] == pytest.approx(10.0 / 21, abs=1e-9)


def test_eval_command_writes_the_official_keys(tmp_path):
    from dahyf.cli import main

    rng = np.random.default_rng(2)
    gt = rng.normal(scale=0.04, size=(3, 21, 3))
    verts = rng.normal(scale=0.04, size=(3, 778, 3))
    (tmp_path / "evaluation_xyz.json").write_text(json.dumps(gt.tolist()))
    (tmp_path / "evaluation_verts.json").write_text(json.dumps(verts.tolist()))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([(gt + 0.002).tolist(), (verts * 1.1).tolist()]))
    out = tmp_path / "m.json"
    assert main(["eval", "--dataset", "freihand", "--data", str(tmp_path), "--pred", str(pred), "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    for k in ("pa_mpjpe_mm", "pa_mpvpe_mm", "f5", "f15", "auc_joints", "auc_verts"):
        assert k in m
    assert m["pa_mpjpe_mm"] < 1e-3 and m["f5"] == 1.0
    # wrong sample count → clear error, exit code 2, nothing written
    pred.write_text(json.dumps([gt[:2].tolist(), verts[:2].tolist()]))
    out2 = tmp_path / "m2.json"
    assert main(["eval", "--data", str(tmp_path), "--pred", str(pred), "--out", str(out2)]) == 2
    assert not out2.exists()


@pytest.mark.parametrize("content", ["{}", "[[], null]", "[1, 2]"])
def test_eval_command_refuses_a_prediction_file_not_in_the_competition_format(tmp_path, capsys, content):
    from dahyf.cli import main

    (tmp_path / "evaluation_xyz.json").write_text(json.dumps(np.zeros((1, 21, 3)).tolist()))
    (tmp_path / "pred.json").write_text(content)
    assert main(["eval", "--data", str(tmp_path), "--pred", str(tmp_path / "pred.json")]) == 2
    assert "[xyz_list, verts_list]" in capsys.readouterr().err
