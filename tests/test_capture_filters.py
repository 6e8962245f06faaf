"""Temporal filters: on SO(3) (never on axis-angle components), zero lag, streaming = offline."""
from __future__ import annotations

import numpy as np
import pytest

from dahyf.hand import quaternion as Q
from dahyf.capture.filters import (CentredSmoother, OneEuroFilter, OneEuroRotationFilter, PoseSample,
                                   centred_smooth,
                                   so3_exp_apply, so3_log_relative)


def _angle_between(a, b):
    """Geodesic angle (rad) between axis-angle rotations a and b (..., 3)."""
    return np.linalg.norm(so3_log_relative(Q.from_axis_angle(a), Q.from_axis_angle(b)), axis=-1)


def test_quaternion_round_trip_and_log_exp():
    rng = np.random.default_rng(0)
    aa = rng.normal(size=(200, 3))
    aa *= (rng.uniform(0, np.pi - 1e-3, 200) / np.linalg.norm(aa, axis=1))[:, None]
    np.testing.assert_allclose(Q.to_axis_angle(Q.from_axis_angle(aa)), aa, atol=1e-9)
    q0, q1 = Q.from_axis_angle(aa[:100]), Q.from_axis_angle(aa[100:])
    v = so3_log_relative(q0, q1)
    assert np.allclose(_angle_between(Q.to_axis_angle(so3_exp_apply(q0, v)), aa[100:]), 0, atol=1e-9)


def _spin(n, rate, axis=(0.0, 0.0, 1.0), start=0.0):
    """(n, 1, 3) rotations about ``axis`` at ``rate`` rad/frame."""
    axis = np.asarray(axis) / np.linalg.norm(axis)
    return ((start + rate * np.arange(n))[:, None] * axis)[:, None, :]


def test_centred_smoother_has_zero_lag_on_constant_rotation_speed():
    rot = _spin(60, 0.05)
    vec = np.arange(60.0)[:, None] * [0.01, 0.0, 0.0]
    out_r, out_v = centred_smooth(np.arange(60), rot, vec, sigma=2.0, half_window=5)
    inner = slice(5, 55)   # full windows
    assert np.abs(_angle_between(out_r[inner], rot[inner])).max() < 1e-6
    np.testing.assert_allclose(out_v[inner], vec[inner], atol=1e-12)


def test_smoothing_across_the_axis_angle_wrap_stays_on_the_rotation():
    # A spin through 180 degrees: the axis-angle vector jumps from ~(0,0,pi) to ~(0,0,-pi).
    # Averaging components would give ~0 (identity); averaging on SO(3) keeps the rotation.
    angles = np.pi - 0.3 + 0.02 * np.arange(30)
    wrapped = np.where(angles > np.pi, angles - 2 * np.pi, angles)
    rot = (wrapped[:, None] * [0.0, 0.0, 1.0])[:, None, :]
    assert np.abs(np.diff(rot[:, 0, 2])).max() > 6     # the jump is there
    out, _ = centred_smooth(np.arange(30), rot, np.zeros((30, 3)), sigma=2.0, half_window=5)
    err = _angle_between(out, rot)[5:25]
    assert err.max() < 1e-6


def test_centred_smoother_removes_noise():
    rng = np.random.default_rng(1)
    clean = _spin(200, 0.02, axis=(1, 2, 0.5))
    noisy_q = so3_exp_apply(Q.from_axis_angle(clean), rng.normal(scale=0.05, size=clean.shape))
    noisy = Q.to_axis_angle(noisy_q)
    out, _ = centred_smooth(np.arange(200), noisy, np.zeros((200, 3)), sigma=2.0, half_window=5)
    assert _angle_between(out, clean)[5:-5].mean() < 0.5 * _angle_between(noisy, clean)[5:-5].mean()


def test_streaming_smoother_equals_offline_and_holds_a_bounded_window():
    rng = np.random.default_rng(2)
    frames = np.concatenate([np.arange(0, 40), np.arange(43, 90), np.arange(200, 230)])
    rot = rng.normal(scale=0.3, size=(len(frames), 16, 3))
    vec = rng.normal(size=(len(frames), 3))
    ref_r, ref_v = centred_smooth(frames, rot, vec, sigma=1.5, half_window=4)
    sm = CentredSmoother(sigma=1.5, half_window=4)
    out, max_buf = [], 0
    for f, r, v in zip(frames, rot, vec):
        out += sm.push(PoseSample(int(f), f / 30.0, r, v))
        max_buf = max(max_buf, len(sm._frames))
        # a row is emitted exactly `lag` frames after it arrived
        assert all(o.frame <= f - sm.lag for o in out)
    out += sm.flush()
    assert [o.frame for o in out] == frames.tolist()
    assert [o.time_s for o in out] == (frames / 30.0).tolist()
    np.testing.assert_allclose(np.stack([o.pose for o in out]), ref_r, atol=1e-12)
    np.testing.assert_allclose(np.stack([o.transl for o in out]), ref_v, atol=1e-12)
    assert max_buf <= 2 * 4 + 2


def test_one_euro_smooths_still_signal_and_follows_fast_motion():
    rng = np.random.default_rng(3)
    t = np.arange(300) / 30.0
    f = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    still = np.array([f(ti, x) for ti, x in zip(t, rng.normal(scale=0.01, size=(300, 3)))])
    assert still[30:].std() < 0.5 * 0.01
    rf = OneEuroRotationFilter(min_cutoff=1.0, beta=0.5)
    fast = _spin(300, 0.1)[:, 0]   # 3 rad/s
    out = np.array([rf(ti, r[None])[0] for ti, r in zip(t, fast)])
    # causal: it lags a little, but keeps up within a few degrees on fast steady motion
    assert _angle_between(out[60:], fast[60:]).max() < np.deg2rad(10)


def _samples(n, rng, gap_after=None):
    frames = np.arange(n) + (np.arange(n) > gap_after) * 5 if gap_after is not None else np.arange(n)
    return [PoseSample(int(f), f / 30.0, rng.normal(scale=0.3, size=(16, 3)), rng.normal(size=3)) for f in frames]


def test_every_registered_filter_keeps_the_pose_filter_contract():
    # Each row pushed comes out exactly once, in frame order, with its own frame and time; causal
    # filters give it back from its own push, the others at most `lag` frames later.
    from dahyf.capture.filters import FILTER_KINDS, make_filter

    rng = np.random.default_rng(4)
    rows = _samples(40, rng, gap_after=20)
    for kind, cls in FILTER_KINDS.items():
        for smooth in (0.0, 0.5, 1.0):
            flt = make_filter(kind, smooth, 30.0)
            assert isinstance(flt, cls) and isinstance(cls.causal, bool)
            out = []
            for r in rows:
                got = flt.push(r)
                if cls.causal:
                    assert [g.frame for g in got] == [r.frame], kind
                assert all(g.frame <= r.frame - flt.lag for g in got), kind
                out += got
                out += flt.advance_to(r.frame)
            out += flt.flush()
            assert [o.frame for o in out] == [r.frame for r in rows], (kind, smooth)
            assert [o.time_s for o in out] == [r.time_s for r in rows], (kind, smooth)
            assert all(o.pose.shape == (16, 3) and o.transl.shape == (3,) for o in out)


def test_filters_keep_the_fields_of_a_sample_subclass():
    import dataclasses

    from dahyf.capture.filters import FILTER_KINDS, make_filter

    @dataclasses.dataclass(frozen=True)
    class Tagged(PoseSample):
        tag: str

    for kind in FILTER_KINDS:
        flt = make_filter(kind, 0.5, 30.0)
        out = [o for i in range(5) for o in flt.push(Tagged(i, i / 30, np.zeros((16, 3)), np.zeros(3), f"t{i}"))]
        out += flt.flush()
        assert [type(o) for o in out] == [Tagged] * 5 and [o.tag for o in out] == [f"t{i}" for i in range(5)]


def test_local_quadratic_follows_accelerating_motion_that_a_local_mean_averages_away():
    from dahyf.capture.filters import local_polynomial_weights

    k = np.arange(-6, 7)
    g = np.exp(-0.5 * (k / 3.0) ** 2)
    e = local_polynomial_weights(k, g, 2)
    assert e.sum() == pytest.approx(1.0) and (e < 0).any()
    np.testing.assert_allclose(e @ (0.3 + 0.2 * k - 0.05 * k ** 2), 0.3, atol=1e-12)   # exact on a parabola
    assert abs(local_polynomial_weights(k, g, 0) @ (0.3 - 0.05 * k ** 2) - 0.3) > 0.2   # a mean is not
    # Too few distinct frames for a quadratic (a gap): falls back to a lower degree, still sums to 1.
    assert local_polynomial_weights(np.array([0, 1]), np.array([1.0, 0.5]), 2).sum() == pytest.approx(1.0)
    # A wave speeding up (angular acceleration) and translating with acceleration: degree 2 keeps it.
    n = 60
    angle = 0.002 * np.arange(n) ** 2
    rot = (angle[:, None] * [0.0, 0.0, 1.0])[:, None, :]
    vec = (0.001 * np.arange(n) ** 2)[:, None] * [1.0, 0.0, 0.0]
    quad_r, quad_v = centred_smooth(np.arange(n), rot, vec, sigma=4.0, half_window=10, degree=2)
    mean_r, mean_v = centred_smooth(np.arange(n), rot, vec, sigma=4.0, half_window=10)
    inner = slice(10, n - 10)
    assert _angle_between(quad_r[inner], rot[inner]).max() < 1e-6
    np.testing.assert_allclose(quad_v[inner], vec[inner], atol=1e-9)
    assert _angle_between(mean_r[inner], rot[inner]).max() > 0.02


def test_capture_smoother_is_the_local_quadratic_and_streams_like_offline():
    from dahyf.capture.filters import QUADRATIC_WIDTH, SMOOTH_DEGREE, SMOOTH_SIGMA_S, make_filter

    sm = make_filter("zero_lag", 0.5, 30.0)
    assert sm.degree == SMOOTH_DEGREE == 2 and sm.sigma == pytest.approx(0.5 * SMOOTH_SIGMA_S * QUADRATIC_WIDTH * 30)
    rng = np.random.default_rng(3)
    frames = np.concatenate([np.arange(0, 30), np.arange(33, 70)])
    rot = rng.normal(scale=0.3, size=(len(frames), 16, 3))
    vec = rng.normal(size=(len(frames), 3))
    ref_r, ref_v = centred_smooth(frames, rot, vec, sigma=sm.sigma, half_window=sm.half_window, degree=2)
    out = []
    for f, r, v in zip(frames, rot, vec):
        out += sm.push(PoseSample(int(f), f / 30.0, r, v))
    out += sm.flush()
    np.testing.assert_allclose(np.stack([o.pose for o in out]), ref_r, atol=1e-9)
    np.testing.assert_allclose(np.stack([o.transl for o in out]), ref_v, atol=1e-12)


def test_one_euro_translation_opens_up_at_hand_speeds():
    # A hand moving at 0.5 m/s: the pose filter's translation must lag clearly less than the same
    # filter without speed adaptation (its beta is in Hz per m/s, not the rotations' Hz per rad/s).
    from dahyf.capture.filters import OneEuroPoseFilter, make_filter

    def lag_frames(flt):
        t = np.arange(90) / 30.0
        x = np.c_[0.5 * t, np.zeros(90), np.full(90, 0.6)]
        out = np.array([flt.push(PoseSample(i, t[i], np.zeros((16, 3)), x[i]))[0].transl for i in range(90)])
        return float(np.mean((x[60:, 0] - out[60:, 0]) / 0.5 * 30.0))   # steady state, in frames

    live = make_filter("one_euro", 0.5, 30.0)
    still = OneEuroPoseFilter(live.vec_filter.min_cutoff, 0.0, 0.0)
    assert lag_frames(live) < 0.7 * lag_frames(still), (lag_frames(live), lag_frames(still))


def test_zero_lag_smoother_solves_each_window_pattern_once(monkeypatch):
    """The local quadratic's kernel is solved once per pattern of present frames, not once per row
    (one small solve per row made the capture's engine stage ~3x slower on the shared cores)."""
    import dahyf.capture.filters as filters

    calls = []
    real = filters.local_polynomial_weights
    monkeypatch.setattr(filters, "local_polynomial_weights", lambda *a: calls.append(1) or real(*a))
    sm = filters.make_filter("zero_lag", 0.5, 30.0)
    rng = np.random.default_rng(5)
    out = []
    for f in range(200):
        out += sm.push(PoseSample(f, f / 30.0, rng.normal(scale=0.3, size=(16, 3)), rng.normal(size=3)))
    out += sm.flush()
    assert len(out) == 200
    # the full window inside the track, plus the shortened windows at its two ends
    assert len(calls) <= 2 * sm.half_window + 1
