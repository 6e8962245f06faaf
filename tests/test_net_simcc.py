"""SJCP: the SimCC codec round-trips sub-pixel coordinates; head and KL loss behave."""
from __future__ import annotations

import numpy as np
import pytest
torch = pytest.importorskip("torch")  # the image network is torch

from dahyf.net.heatmap import heatmap_decode, heatmap_encode, heatmap_loss
from dahyf.net.simcc import SimCCHead, num_bins, simcc_decode, simcc_encode, simcc_kl_loss


def test_dahyf_uses_672_bins():
    assert num_bins(224, 3.0) == 672


def test_encode_decode_recovers_subpixel_coordinates_numpy():
    rng = np.random.default_rng(0)
    kp = rng.uniform(8.0, 216.0, size=(5, 21, 2))  # away from the borders by > 3 σ
    lx, ly = simcc_encode(kp)
    assert isinstance(lx, np.ndarray) and lx.shape == (5, 21, 672) and ly.shape == (5, 21, 672)
    np.testing.assert_allclose(lx.sum(-1), 1.0, atol=1e-9)
    dec, scores = simcc_decode(lx, ly, log_space=False)
    assert np.abs(dec - kp).max() < 0.05
    # logits → the same through the softmax path
    dec2, _ = simcc_decode(np.log(lx + 1e-30), np.log(ly + 1e-30))
    assert np.abs(dec2 - kp).max() < 0.05
    assert scores.shape == (5, 21)


def test_encode_decode_torch_and_peak_position():
    kp = torch.tensor([[[100.37, 50.81], [3.0 + 1 / 3, 200.0]]], dtype=torch.float64)
    lx, ly = simcc_encode(kp, sigma=1.5)
    assert torch.is_tensor(lx)
    assert int(lx[0, 0].argmax()) == round(100.37 * 3)
    dec, _ = simcc_decode(lx, ly, log_space=False)
    assert (dec[0, 0] - kp[0, 0]).abs().max() < 0.05


def test_kl_loss_is_zero_for_the_label_and_positive_otherwise():
    kp = torch.rand(2, 21, 2) * 200 + 10
    lx, ly = simcc_encode(kp)
    log = lambda p: torch.log(p.clamp_min(1e-30))  # noqa: E731  (finite logits, like a network's)
    assert simcc_kl_loss(log(lx), log(ly), lx, ly).item() == pytest.approx(0.0, abs=1e-5)
    wrong_x, wrong_y = simcc_encode(kp + 5.0)
    assert simcc_kl_loss(log(wrong_x), log(wrong_y), lx, ly).item() > 0.5
    # masked samples do not count
    w = torch.tensor([1.0, 0.0])
    mixed_x = torch.cat([log(lx[:1]), log(wrong_x[1:])])
    mixed_y = torch.cat([log(ly[:1]), log(wrong_y[1:])])
    assert simcc_kl_loss(mixed_x, mixed_y, lx, ly, w).item() == pytest.approx(0.0, abs=1e-5)


def test_simcc_head_shapes_and_gradients():
    head = SimCCHead(in_channels=8, num_joints=21, feature_size=56)
    f = torch.randn(2, 8, 56, 56, requires_grad=True)
    out = head(f)
    assert out["simcc_x"].shape == (2, 21, 672) and out["joints2d"].shape == (2, 21, 2)
    assert out["joint_maps"].shape == (2, 21, 56, 56)  # F_k
    out["joints2d"].sum().backward()
    assert f.grad is not None and torch.isfinite(f.grad).all()


def test_heatmap_decoding_is_quantised_to_the_grid():
    """The paper's heatmap baseline: arg-max of Gaussian maps, so a joint is read at a cell centre (4 px grid)."""
    kp = torch.tensor([[[60.3, 121.7], [150.0, 30.5]]])
    hm = heatmap_encode(kp, size=56)
    dec = heatmap_decode(hm)
    torch.testing.assert_close(dec, torch.tensor([[[62.0, 122.0], [150.0, 30.0]]]))  # nearest cell centres k·4 + 2
    assert (dec - kp).abs().max() <= 2.0 and (dec - kp).abs().max() > 0.4
    assert heatmap_loss(hm, hm) == 0 and heatmap_loss(torch.zeros_like(hm), hm) > 0
