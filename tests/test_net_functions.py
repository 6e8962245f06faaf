"""Pure network functions of DaHyF: direction maps, positional encoding, camera, projection confidence."""
from __future__ import annotations

import math

import pytest
torch = pytest.importorskip("torch")

from dahyf.geometry import default_focal, project_points
from dahyf.net.camera import full_to_weak, weak_project, weak_to_full_perspective
from dahyf.net.confidence import projection_confidence, projection_confidence_image
from dahyf.net.encoding import (feature_locations, global_direction, global_direction_map, joint_mu,
                                local_direction, positional_encoding)
from dahyf.net.regressor import matrix_to_rot6d, rot6d_to_matrix, rotation_distance


def test_gdm_of_a_feature_location_equals_the_paper_formula():
    # feature cell (P_f) = (10, 3) of a 56×56 map, crop 224, crop side 300 px at ulc (500, 120) in 1280×720, f = 900
    s_p, s_f, s_i, ulc, W, H, f = 224, 56, 300.0, (500.0, 120.0), 1280.0, 720.0, 900.0
    sc_p = s_p / s_f
    P_l = (10 * sc_p + sc_p / 2, 3 * sc_p + sc_p / 2)
    sc_o = s_i / s_p
    expected = ((P_l[0] * sc_o + ulc[0] - W / 2) / f, (P_l[1] * sc_o + ulc[1] - H / 2) / f)
    gdm = global_direction_map(s_f, torch.tensor([ulc]), torch.tensor([s_i]), torch.tensor([[W, H]]), torch.tensor([f]))
    assert gdm.shape == (1, 2, s_f, s_f)
    assert gdm[0, 0, 3, 10].item() == pytest.approx(expected[0], rel=1e-6)
    assert gdm[0, 1, 3, 10].item() == pytest.approx(expected[1], rel=1e-6)
    assert tuple(feature_locations(s_f)[3, 10].tolist()) == pytest.approx(P_l)


def test_gdm_of_points_is_zero_at_the_image_centre_and_ldm_ignores_the_crop_position():
    image = torch.tensor([[1920.0, 1080.0]])
    # a crop whose centre is the image centre: its centre point (112, 112) looks straight ahead
    d = global_direction(torch.tensor([[[112.0, 112.0]]]), torch.tensor([[960.0 - 50, 540.0 - 50]]),
                         torch.tensor([100.0]), image, torch.tensor([1000.0]))
    assert d.abs().max().item() < 1e-7
    assert local_direction(torch.tensor([112.0, 112.0])).abs().max().item() == 0


def test_positional_encoding_has_336_dims_for_21_joints_and_matches_gamma():
    p = torch.rand(3, 21, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 0.5
    pe = positional_encoding(p, num_freqs=4)
    assert pe.flatten(1).shape == (3, 21 * 2 * 8) == (3, 336)
    x = p[1, 7, 1].item()
    want = [math.sin(2 ** l * math.pi * x) for l in range(1, 5)] + [math.cos(2 ** l * math.pi * x) for l in range(1, 5)]
    assert pe[1, 7, 8:16].tolist() == pytest.approx(want, abs=1e-9)
    mu = joint_mu(torch.full((1, 21, 2), 112.0 + 50), torch.tensor([500.0]))
    assert mu.flatten().tolist() == pytest.approx([0.1] * 42)


def test_default_focal_is_the_image_diagonal():
    assert default_focal(torch.tensor([640, 480])).item() == pytest.approx(800.0)


def test_weak_to_full_perspective_round_trip_and_projection_agree():
    g = torch.Generator().manual_seed(0)
    B = 64
    image = torch.tensor([[1280.0, 720.0]]).repeat(B, 1)
    focal = 1000 + 500 * torch.rand(B, generator=g)
    centre = torch.rand(B, 2, generator=g) * image
    side = 50 + 300 * torch.rand(B, generator=g)
    weak = torch.stack([5 + 20 * torch.rand(B, generator=g), 0.05 * torch.randn(B, generator=g),
                        0.05 * torch.randn(B, generator=g)], -1)
    transl = weak_to_full_perspective(weak, centre, side, image, focal)
    assert torch.allclose(full_to_weak(transl, centre, side, image, focal), weak, rtol=1e-4, atol=1e-5)
    # a point at the model origin (depth t_z) projects where the weak camera puts it in the crop
    origin = torch.zeros(B, 1, 3)
    px = project_points(origin + transl[:, None], focal, image)[:, 0]
    crop_norm = weak_project(origin, weak)[:, 0]
    assert torch.allclose(px, centre + crop_norm * side[:, None] / 2, atol=1e-2)


def test_projection_confidence_is_one_for_a_matching_projection_and_lower_when_shuffled():
    g = torch.Generator().manual_seed(1)
    B, s_p = 16, 224
    centre = 300 + 100 * torch.rand(B, 2, generator=g)
    side = 100 + 100 * torch.rand(B, generator=g)
    crop = 30 + 164 * torch.rand(B, 21, 2, generator=g)  # joints in the 224 crop
    image = crop * (side / s_p)[:, None, None] + (centre - side[:, None] / 2)[:, None]
    assert torch.allclose(projection_confidence(crop, image, centre, side), torch.ones(B), atol=1e-5)
    assert torch.allclose(projection_confidence_image(image, image, centre, side), torch.ones(B), atol=1e-5)
    # a scaled projection about the crop centre is still a match (scale-free by design)
    scaled = centre[:, None] + 0.7 * (image - centre[:, None])
    assert torch.allclose(projection_confidence(crop, scaled, centre, side), torch.ones(B), atol=1e-5)
    shuffled = image[:, torch.randperm(21, generator=g)]
    conf = projection_confidence(crop, shuffled, centre, side)
    assert (conf < 0.8).all()


def test_rot6d_round_trip_and_rotation_distance():
    from dahyf.hand.kinematics import batch_rodrigues

    aa = torch.randn(100, 3, generator=torch.Generator().manual_seed(2))
    R = batch_rodrigues(aa)
    assert torch.allclose(rot6d_to_matrix(matrix_to_rot6d(R)), R, atol=1e-5)
    Rz = batch_rodrigues(torch.tensor([[0.0, 0.0, 0.5]]))
    assert rotation_distance(Rz, torch.eye(3)[None]).item() == pytest.approx(0.5, abs=1e-3)
