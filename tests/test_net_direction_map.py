"""GDM / LDM feature fusion, positional encoding size, camera round trip and projection confidence in the network."""
from __future__ import annotations

import pytest
import torch

from dahyf.net.direction_map import DirectionMapFusion, direction_map, repeat_to_channels


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


def test_ldm_is_crop_local_and_ignores_the_image_position():
    a = direction_map("ldm", 7, torch.tensor([[300.0, 200.0, 150.0]]), torch.tensor([[640.0, 480.0]]), torch.tensor([800.0]))
    b = direction_map("ldm", 7, torch.tensor([[30.0, 20.0, 50.0]]), torch.tensor([[1920.0, 1080.0]]), torch.tensor([900.0]))
    assert torch.equal(a, b)
    assert a[0, 0, 0, 0].item() == pytest.approx((16 - 112) / 224)  # cell centre 16 px


def test_fusion_adds_the_map_repeated_over_channels():
    fuse = DirectionMapFusion("gdm", channels=5)
    boxes, size, focal = torch.tensor([[100.0, 90.0, 60.0]]), torch.tensor([[320.0, 240.0]]), torch.tensor([400.0])
    out = fuse(torch.zeros(1, 5, 7, 7), boxes, size, focal)
    d = direction_map("gdm", 7, boxes, size, focal)
    for c in range(5):
        assert torch.allclose(out[0, c], d[0, c % 2])
    assert torch.equal(repeat_to_channels(d, 5)[:, 4], d[:, 0])
    ident = DirectionMapFusion("none", channels=5)
    x = torch.randn(1, 5, 7, 7)
    assert torch.equal(ident(x, boxes, size, focal), x)
    with pytest.raises(ValueError, match="direction map"):
        DirectionMapFusion("xyz", 4)
