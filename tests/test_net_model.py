"""The DaHyF image network: every Table 4 row runs, PE is 336-D, camera and confidence are consistent,
checkpoints rebuild it, and the capture estimator mirrors left hands."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
torch = pytest.importorskip("torch")  # the image network is torch

from dahyf.hand.model import load_hand_model
from dahyf.net.batch import HandBatch
from dahyf.net.camera import full_to_weak
from dahyf.net.confidence import projection_confidence
from dahyf.net.dahyf_net import DaHyF, DaHyFConfig, DaHyFEstimator, save_dahyf
from dahyf.train.configs import CONFIGS, TABLE4_ROWS, model_config


@pytest.fixture(scope="module")
def hand():
    return load_hand_model("open", "right")


def _inputs(B=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(B, 3, 224, 224, generator=g)
    boxes = torch.tensor([[700.0, 300.0, 260.0], [200.0, 500.0, 180.0]])[:B]
    size = torch.tensor([[1280.0, 720.0]]).expand(B, 2)
    focal = torch.tensor([1100.0, 1300.0])[:B]
    return images, boxes, size, focal


def test_public_import_is_light():
    code = "import sys, dahyf.net; assert 'torch' not in sys.modules; from dahyf.net import DaHyF, DaHyFConfig; print(DaHyF.__name__)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "DaHyF"


@pytest.mark.parametrize("row", sorted(TABLE4_ROWS))
def test_every_table4_row_builds_and_runs(row, hand):
    cfg = model_config(row, "light", regressor_width=64, regressor_depth=1)
    net = DaHyF(cfg, hand=hand).eval()
    with torch.no_grad():
        out = net(*_inputs())
    B = 2
    assert out["pose"].shape == (B, 16, 3) and out["betas"].shape == (B, 10) and out["cam_t"].shape == (B, 3)
    assert out["joints3d"].shape == (B, 21, 3) and out["vertices"].shape == (B, hand.num_vertices, 3)
    assert out["joints2d"].shape == (B, 21, 2) and out["joints2d_proj"].shape == (B, 21, 2)
    assert out["confidence"].shape == (B,)
    assert ("simcc_x" in out) == (cfg.joint_head == "simcc") and ("heatmaps" in out) == (cfg.joint_head == "heatmap")
    if cfg.joint_head == "simcc":
        assert out["simcc_x"].shape == (B, 21, 672)
    assert all(torch.isfinite(v).all() for v in out.values())
    assert (out["cam_t"][:, 2] > 0).all()


def test_configs_cover_the_paper_recipe_and_all_rows():
    paper = CONFIGS["paper"]
    assert paper.model.backbone == "hrnet_w64" and paper.lr == 5e-5 and paper.epochs == 500
    assert paper.lr_milestones == (250,) and paper.batch_size == 128 and paper.contrastive_epochs == 100
    assert {f"r50_{r}" for r in TABLE4_ROWS} <= set(CONFIGS)
    assert len(TABLE4_ROWS) == 7
    ho3d = CONFIGS["paper_ho3d"]  # the HO3D fine-tune: same network, HO3D's fingertips, 3 epochs
    assert ho3d.epochs == 3 and ho3d.model.keypoints == "ho3d" and ho3d.model.backbone == "hrnet_w64"


def test_every_table4_row_differs_from_its_neighbour_in_exactly_one_component():
    rows = list(TABLE4_ROWS.items())
    assert rows[0][0] == "baseline" and rows[0][1][4] is None
    for (prev, a), (name, b) in zip(rows, rows[1:]):
        assert b[4] == prev, f"{name} is compared with {b[4]}, not its neighbour {prev}"
        changed = [k for k, (x, y) in enumerate(zip(a[:4], b[:4])) if x != y]
        assert len(changed) == 1, f"{prev} → {name} changes {changed}"
    components = {"direction_map", "joint_head", "positional_encoding", "contrastive"}
    seen = {("direction_map", "joint_head", "positional_encoding", "contrastive")[k]
            for (_, a), (_, b) in zip(rows, rows[1:]) for k in range(4) if a[k] != b[k]}
    assert seen == components  # every component of the model is ablated once


def test_the_regressor_reads_image_features_and_the_2d_joints(hand):
    """The hybrid feature: pooled image features ⊕ V_PE (336) in the full model, ⊕ the joints μ (42) without
    PE, image features only without a joint head."""
    cfg = DaHyFConfig(backbone="light", regressor_width=32, regressor_depth=1)
    assert cfg.pe_dims == 336 == cfg.joint_feature_dims
    net = DaHyF(cfg, hand=hand)
    image = net.regressor_stage.channels
    assert net.regressor.inp.in_features == image + 336
    no_pe = DaHyF(DaHyFConfig(backbone="light", regressor_width=32, regressor_depth=1, positional_encoding=False), hand=hand)
    assert no_pe.regressor.inp.in_features == image + 42
    torch.manual_seed(0)
    x, out = no_pe.regressor_input(*_inputs())
    from dahyf.net.encoding import joint_mu

    f_crop = torch.tensor([1100.0, 1300.0]) * 224 / torch.tensor([260.0, 180.0])
    torch.testing.assert_close(x[:, image:], joint_mu(out["joints2d"], f_crop).flatten(1))
    bare = DaHyF(DaHyFConfig(backbone="light", regressor_width=32, regressor_depth=1, joint_head="none", positional_encoding=False), hand=hand)
    assert bare.regressor.inp.in_features == image


def test_weak_camera_round_trips_through_the_full_perspective_translation(hand):
    net = DaHyF(DaHyFConfig(backbone="light", regressor_width=32, regressor_depth=1), hand=hand).eval()
    images, boxes, size, focal = _inputs()
    with torch.no_grad():
        out = net(images, boxes, size, focal)
    back = full_to_weak(out["cam_t"], boxes[:, :2], boxes[:, 2], size, focal)
    torch.testing.assert_close(back, out["weak_cam"], rtol=1e-5, atol=1e-6)
    # CLIFF's relation is exact for points at the model's depth origin (Z = 0): the full-perspective
    # projection of X + cam_t lands where the weak camera puts X in the crop.
    X = torch.randn(2, 50, 3) * 0.05
    X[..., 2] = 0
    from dahyf.geometry import project_points

    full_uv = 2 * (project_points(X + out["cam_t"][:, None], focal, size) - boxes[:, None, :2]) / boxes[:, None, 2:3]
    weak_uv = out["weak_cam"][:, None, :1] * (X[..., :2] + out["weak_cam"][:, None, 1:])
    torch.testing.assert_close(full_uv, weak_uv, atol=1e-4, rtol=0)


def test_confidence_is_one_for_a_matching_projection_and_lower_for_a_shuffled_hand(hand):
    net = DaHyF(DaHyFConfig(backbone="light", regressor_width=32, regressor_depth=1), hand=hand).eval()
    images, boxes, size, focal = _inputs()
    with torch.no_grad():
        out = net(images, boxes, size, focal)
    proj = out["joints2d_proj"]
    j2d_crop = (proj - (boxes[:, None, :2] - boxes[:, None, 2:3] / 2)) * (224 / boxes[:, None, 2:3])
    good = projection_confidence(j2d_crop, proj, boxes[:, :2], boxes[:, 2])
    torch.testing.assert_close(good, torch.ones(2), atol=1e-5, rtol=0)
    perm = torch.tensor([0, 20, 3, 17, 9, 1, 12, 5, 14, 8, 2, 19, 6, 11, 16, 4, 13, 7, 18, 10, 15])
    shuffled = projection_confidence(j2d_crop[:, perm], proj, boxes[:, :2], boxes[:, 2])
    assert (shuffled < good - 0.05).all()


def test_backbones_give_56_and_7_feature_maps():
    from dahyf.net.backbones import build_backbone

    for name, (cf, cc) in {"resnet50": (256, 2048), "hrnet_w64": (64, 2048), "light": (48, 192)}.items():
        bb = build_backbone(name).eval()
        with torch.no_grad():
            f = bb(torch.zeros(1, 3, 224, 224))
        assert f.fine.shape == (1, cf, 56, 56) and f.coarse.shape == (1, cc, 7, 7), name
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg")


def test_checkpoint_rebuilds_the_network_and_the_estimator_mirrors_left_hands(tmp_path, hand):
    import dahyf
    from dahyf.net.checkpoint import load_checkpoint

    torch.manual_seed(0)
    net = DaHyF(DaHyFConfig(name="t", backbone="light", regressor_width=32, regressor_depth=1), hand=hand)
    path = save_dahyf(tmp_path / "dahyf.pt", net, meta={"note": "test"})
    est = load_checkpoint(path)
    assert isinstance(est, DaHyFEstimator) and est.needs_crops and est.config == net.cfg
    for k, v in net.state_dict().items():
        assert torch.equal(v, est.net.state_dict()[k])
    engine = dahyf.load_engine(path, device="cpu")
    assert engine.estimator.needs_crops

    rng = np.random.default_rng(0)
    crop = torch.from_numpy(rng.integers(0, 255, (1, 224, 224, 3), dtype=np.uint8))
    W, H = 1280.0, 720.0
    box = torch.tensor([[400.0, 300.0, 200.0]])
    size, focal = torch.tensor([[W, H]]), torch.tensor([1000.0])
    lm = torch.zeros(1, 21, 2)
    r = est.predict(HandBatch.of(lm, [True], size, focal, crops=crop, boxes=box))
    # the same hand seen mirrored: flipped crop, mirrored box, left
    l = est.predict(HandBatch.of(lm, [False], size, focal, crops=crop.flip(2), boxes=torch.tensor([[W - 400.0, 300.0, 200.0]])))
    torch.testing.assert_close(l["pose"][..., 0], r["pose"][..., 0], atol=1e-4, rtol=0)
    torch.testing.assert_close(l["pose"][..., 1:], -r["pose"][..., 1:], atol=1e-4, rtol=0)
    torch.testing.assert_close(l["transl"], r["transl"] * torch.tensor([-1.0, 1, 1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(l["joints2d_proj"][..., 0], W - r["joints2d_proj"][..., 0], atol=1e-3, rtol=0)
    torch.testing.assert_close(l["confidence"], r["confidence"], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="crops"):
        est.predict(HandBatch.of(lm, [True], size, focal))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_amp_forward_matches_cpu(hand):
    torch.manual_seed(0)
    net = DaHyF(DaHyFConfig(backbone="light", regressor_width=32, regressor_depth=1), hand=hand).eval()
    inputs = _inputs()
    with torch.no_grad():
        ref = net(*inputs)
        net = net.cuda()
        with torch.autocast("cuda", dtype=torch.float16):
            out = net(*(x.cuda() for x in inputs))
    assert out["joints3d"].dtype == torch.float32  # the MANO layer runs outside autocast
    torch.testing.assert_close(out["joints3d"].cpu(), ref["joints3d"], atol=5e-3, rtol=0)


def test_capture_pipeline_runs_an_image_checkpoint_unchanged(tmp_path, hand, shared_video):
    import dahyf

    torch.manual_seed(0)
    ckpt = save_dahyf(tmp_path / "img.pt", DaHyF(DaHyFConfig(backbone="light", regressor_width=32, regressor_depth=1), hand=hand))
    engine = dahyf.load_engine(ckpt, device="cpu")
    take = engine.capture(shared_video, hands="both", frame_range=(0, 3), smooth=0.0)
    assert len(take) > 0


def test_empty_batch_gives_empty_outputs():
    """A batch with no hands (a frame range without detections) is not an error."""
    net = DaHyF(DaHyFConfig(backbone="light")).eval()
    with torch.no_grad():
        out = net(torch.zeros(0, 3, 224, 224), torch.zeros(0, 3), torch.zeros(0, 2), torch.zeros(0))
    assert out["vertices"].shape[0] == 0 and out["joints3d"].shape == (0, 21, 3)
    assert out["confidence"].shape == (0,)
