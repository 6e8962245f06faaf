"""FreiHAND training and evaluation crops show hands of the same size (issue 16, fix 3): training crops
around the annotated joints, evaluation crops around the detector's landmarks (MediaPipe, as capture),
both by the shared policy — where the old evaluation fed the whole image, hands ~1.5× smaller.

Real FreiHAND images (../shared/media/freihand, 2-D ground truth) laid out as FreiHAND_pub_v2."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dahyf.geometry import hand_size

pytest.importorskip("torch")  # the training readers (dahyf.train) run on torch

from dahyf.train import datasets as D
from dahyf.train.augment import Augmentation
from dahyf.train.predict import detector_boxes

K = np.array([[480.0, 0, 112.0], [0, 480.0, 112.0], [0, 0, 1]])


@pytest.fixture(scope="module")
def freihand_layout(shared_dir, tmp_path_factory):
    src = shared_dir / "media" / "freihand"
    data = json.loads((src / "test_freihand.json").read_text())
    names = {im["id"]: im["file_name"] for im in data["images"]}
    root = tmp_path_factory.mktemp("fh") / "FreiHAND_pub_v2"
    rng = np.random.default_rng(0)
    for split in ("training", "evaluation"):
        (root / split / "rgb").mkdir(parents=True)
        xyz = []
        for i, ann in enumerate(data["annotations"]):
            uv = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)[:, :2]
            z = 0.5 + 0.02 * rng.standard_normal(21)
            xyz.append(np.column_stack([(uv - K[:2, 2]) / K[0, 0] * z[:, None], z]).tolist())
            shutil.copy(src / names[ann["image_id"]], root / split / "rgb" / f"{i:08d}.jpg")
        (root / f"{split}_K.json").write_text(json.dumps([K.tolist()] * len(xyz)))
        (root / f"{split}_xyz.json").write_text(json.dumps(xyz))
    return root


def test_training_and_evaluation_crops_have_the_same_hand_size(freihand_layout):
    train = D.FreiHAND(freihand_layout, "training")
    paths = [train.image_path(i) for i in range(len(train))]
    boxes, found = detector_boxes(paths)
    assert found.sum() >= 6, f"MediaPipe found a hand in only {found.sum()} of 8 FreiHAND images"
    evaluation = D.FreiHAND(freihand_layout, "evaluation", boxes=boxes)
    size = lambda ds: np.array([float(hand_size(ds[i]["joints2d"])) / 224 for i in range(len(ds))])  # noqa: E731
    r_train, r_eval = size(train)[found], size(evaluation)[found]  # the others fall back to the whole image
    print("hand / crop side: training", r_train.round(3), "evaluation", r_eval.round(3))
    assert np.median(r_train) == pytest.approx(1 / 1.5, rel=1e-3)  # the policy: hand = 1/1.5 of the crop
    assert np.median(r_eval) == pytest.approx(np.median(r_train), rel=0.1)
    # most evaluation hands within the sizes the training augmentation shows (scale 0.85–1.2)
    lo, hi = (1 / 1.5) / Augmentation().scale[1], (1 / 1.5) / Augmentation().scale[0]
    assert ((r_eval >= lo) & (r_eval <= hi)).mean() >= 0.5
    # the old evaluation crop (the whole 224 image): hands far smaller than any training hand
    whole = D.FreiHAND(freihand_layout, "evaluation", boxes=np.tile([112.0, 112.0, 224.0], (len(train), 1)))
    r_whole = size(whole)[found]
    print("whole image", r_whole.round(3))
    assert np.median(r_whole) < 0.75 * np.median(r_train)
