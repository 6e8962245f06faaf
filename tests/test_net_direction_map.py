"""GDM / LDM: the formula, the LDM's upper-left origin, and the map entering *before* the convolution
stages it conditions — so that the crop size and place reach the regressor (issue 16, fix 1)."""
from __future__ import annotations

import pytest
torch = pytest.importorskip("torch")

from dahyf.net.dahyf_net import DaHyF
from dahyf.net.direction_map import DirectionMapFusion, direction_map, repeat_to_channels
from dahyf.train.configs import model_config


@pytest.fixture(scope="module")
def open_hand():
    from dahyf.hand.model import load_hand_model

    return load_hand_model("open", "right")


def test_gdm_of_a_known_crop_equals_the_formula_by_hand():
    # crop (c_x, c_y, s_i) = (300, 200, 150) px in a 640 × 480 image, f = 800 px, 56 × 56 feature map
    boxes = torch.tensor([[300.0, 200.0, 150.0]], dtype=torch.float64)
    size = torch.tensor([[640.0, 480.0]], dtype=torch.float64)
    focal = torch.tensor([800.0], dtype=torch.float64)
    d = direction_map("gdm", 56, boxes, size, focal)
    assert d.shape == (1, 2, 56, 56)
    for row, col in [(0, 0), (10, 33), (55, 55), (27, 4)]:
        sc_p = 224 / 56                     # crop px per feature cell
        p_l = (col * sc_p + sc_p / 2, row * sc_p + sc_p / 2)
        sc_o = 150 / 224                    # image px per crop px
        ulc = (300 - 75, 200 - 75)
        p_g = (p_l[0] * sc_o + ulc[0] - 320, p_l[1] * sc_o + ulc[1] - 240)
        assert d[0, 0, row, col].item() == pytest.approx(p_g[0] / 800, abs=1e-12)
        assert d[0, 1, row, col].item() == pytest.approx(p_g[1] / 800, abs=1e-12)


def test_ldm_has_its_origin_at_the_upper_left_corner_and_ignores_the_image():
    a = direction_map("ldm", 7, torch.tensor([[300.0, 200.0, 150.0]]), torch.tensor([[640.0, 480.0]]), torch.tensor([800.0]))
    b = direction_map("ldm", 7, torch.tensor([[30.0, 20.0, 50.0]]), torch.tensor([[1920.0, 1080.0]]), torch.tensor([900.0]))
    assert torch.equal(a, b)
    # cell (row 0, col 0) is centred 16 px from the upper-left corner of the 224 crop; cell 6 at 208 px
    assert a[0, 0, 0, 0].item() == pytest.approx(16 / 224) and a[0, 1, 0, 0].item() == pytest.approx(16 / 224)
    assert a[0, 0, 0, 6].item() == pytest.approx(208 / 224) and a[0, 1, 6, 0].item() == pytest.approx(208 / 224)
    assert (a > 0).all() and (a < 1).all()


@pytest.mark.parametrize("kind", ["gdm", "ldm"])
def test_the_map_is_concatenated_ahead_of_the_convolution(kind):
    torch.manual_seed(0)
    fuse = DirectionMapFusion(kind, in_channels=5, channels=5)
    boxes, size, focal = torch.tensor([[100.0, 90.0, 60.0]]), torch.tensor([[320.0, 240.0]]), torch.tensor([400.0])
    feats = torch.randn(1, 5, 7, 7)
    x = fuse.stage_input(feats, boxes, size, focal)
    d = direction_map(kind, 7, boxes, size, focal)
    assert x.shape == (1, 10, 7, 7)                      # features ⊕ the map repeated to their 5 channels
    assert torch.equal(x[:, :5], feats)
    for c in range(5):
        assert torch.allclose(x[0, 5 + c], d[0, c % 2])
    assert fuse.stage[0].in_channels == 10               # the first convolution reads both
    torch.testing.assert_close(fuse(feats, boxes, size, focal), fuse.stage(x))
    assert torch.equal(repeat_to_channels(d, 5)[:, 4], d[:, 0])
    none = DirectionMapFusion("none", in_channels=5, channels=5)
    assert none.stage[0].in_channels == 5 and torch.equal(none.stage_input(feats, boxes, size, focal), feats)
    with pytest.raises(ValueError, match="direction map"):
        DirectionMapFusion("xyz", 4, 4)


def _regressor_inputs(row: str, boxes: torch.Tensor, hand) -> torch.Tensor:
    torch.manual_seed(0)
    net = DaHyF(model_config(row, "light", regressor_width=32, regressor_depth=1), hand=hand).eval()
    seen = []
    net.regressor.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    image = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1)).expand(len(boxes), -1, -1, -1)
    with torch.no_grad():
        net(image, boxes, torch.tensor([[1280.0, 720.0]]).expand(len(boxes), 2), torch.full((len(boxes),), 1000.0))
    return seen[0]


def test_crop_size_and_place_reach_the_regressor_through_the_gdm(open_hand):
    """The same pixels seen as a small or a large crop, here or there: the GDM row's regressor input must
    differ (with the old add-then-pool fusion it reduced to the crop centre's direction: size dropped out)."""
    boxes = torch.tensor([[900.0, 200.0, 120.0],   # reference
                          [900.0, 200.0, 480.0],   # same centre, 4× the side
                          [300.0, 500.0, 120.0]])  # same side, elsewhere
    x = _regressor_inputs("gdm", boxes, open_hand)
    scale = x[0].abs().mean()
    assert (x[1] - x[0]).abs().mean() > 1e-3 * scale      # the crop size matters
    assert (x[2] - x[0]).abs().mean() > 1e-3 * scale      # and the place
    for row in ("baseline", "ldm_full"):                  # no map / a crop-local map: blind to both
        y = _regressor_inputs(row, boxes, open_hand)
        if row == "ldm_full":  # the joint features carry the focal in crop px (f s_p / s_i): compare the image part
            y = y[:, : y.shape[1] - 336]
        torch.testing.assert_close(y[1], y[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(y[2], y[0], atol=1e-6, rtol=0)
