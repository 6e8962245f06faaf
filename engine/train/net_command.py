"""`dahyf train net`: train the DaHyF image network from the command line.

Single process::

    dahyf train net --config light_full --data synthetic --out runs/light

The paper's recipe on four GPUs (global batch 128 = 4 × 32), from ImageNet HRNet-W64 weights, with
HanCo hand / non-hand crops for L_c, then the HO3D fine-tune::

    torchrun --nproc_per_node 4 -m dahyf train net --config paper --dataset freihand --data FreiHAND_pub_v2 \\
        --mano MANO_DIR --hanco HanCo --pretrained hrnet_w64.safetensors --out runs/paper
    torchrun --nproc_per_node 4 -m dahyf train net --config paper_ho3d --dataset ho3d --data HO3D_v3 \\
        --mano MANO_DIR --hanco HanCo --init runs/paper/model.npz --out runs/paper_ho3d
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from torch.utils.data import ConcatDataset, Dataset

from .configs import CONFIGS, TrainConfig, get_config

DATASETS = ("freihand", "ho3d", "synthetic")
#: HanCo crops added per training sample: as many hand crops as non-hand crops, 1 of each per 8 samples.
HANCO_PER_SAMPLE = 1 / 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``dahyf train net``."""
    parser.add_argument("--config", default="paper", choices=sorted(CONFIGS), help="recipe / Table 4 row (default paper)")
    parser.add_argument("--dataset", default="freihand", choices=DATASETS, help="reader for --data (default freihand)")
    parser.add_argument("--data", required=True, help="dataset folder (FreiHAND_pub_v2, HO3D_v2/v3), or 'synthetic'")
    parser.add_argument("--mano", help="folder holding MANO_RIGHT.pkl: required for FreiHAND / HO3D (their MANO labels); "
                                       "synthetic data uses the open hand model without it. The checkpoint records "
                                       "'mano', not the folder: give --mano DIR again when capturing with it")
    parser.add_argument("--hanco", "--negatives", dest="hanco", type=Path,
                        help="HanCo folder: hand crops (positives) and non-hand crops (negatives) for L_c")
    parser.add_argument("--pretrained", type=Path, help="ImageNet weights of the backbone (timm hrnet_w64 / torchvision resnet50 file)")
    parser.add_argument("--init", type=Path, help="start from this DaHyF checkpoint (the HO3D fine-tune: runs/paper/model.npz)")
    parser.add_argument("--val-data", type=Path,
                        help="FreiHAND folder whose evaluation split (with evaluation_xyz.json) is scored during training")
    parser.add_argument("--val-every", type=int, default=10, help="epochs between validations (default 10)")
    parser.add_argument("--out", type=Path, default=Path("runs/dahyf"), help="run folder (last.pt, model.npz)")
    parser.add_argument("--epochs", type=int, help="override the number of epochs")
    parser.add_argument("--batch-size", type=int, help="override the GLOBAL batch size")
    parser.add_argument("--lr", type=float, help="override the learning rate")
    parser.add_argument("--workers", type=int, help="DataLoader workers per process")
    parser.add_argument("--steps-per-epoch", type=int, help="cap optimiser steps per epoch (smoke runs)")
    parser.add_argument("--synthetic-size", type=int, default=256, help="samples of --data synthetic")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-resume", action="store_true", help="start over even if OUT/last.pt exists")


def run_config(args: argparse.Namespace) -> TrainConfig:
    """The config of the command line: the named recipe, the overrides, the hand-model kind ('mano' with
    ``--mano``: the folder itself is never stored) and keypoint convention."""
    from .datasets import DatasetLabelError

    cfg = get_config(args.config, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, num_workers=args.workers)
    synthetic = args.dataset == "synthetic" or args.data == "synthetic"
    if not synthetic and not args.mano:
        raise DatasetLabelError(f"training on {args.dataset} needs the real MANO model for its labels: add --mano DIR "
                                "(the folder holding MANO_RIGHT.pkl, from https://mano.is.tue.mpg.de)")
    keypoints = "model" if synthetic else args.dataset
    return replace(cfg, model=replace(cfg.model, hand_model="mano" if args.mano else "open", keypoints=keypoints))


def build_dataset(kind: str, data: str, augment: bool, seed: int, hand=None, synthetic_size: int = 256,
                  hanco: Path | None = None, hand_model: str = "open") -> Dataset:
    """The training set of ``--dataset`` / ``--data``, plus HanCo hand and non-hand crops when given.

    FreiHAND / HO3D read MANO labels, so ``hand_model`` must be a MANO folder or file (the open hand
    model is refused, see :func:`dahyf.train.datasets.hands_mean_of`).
    """
    from . import datasets as D
    from .augment import Augmentation
    from .synthetic_images import SyntheticImages

    aug = Augmentation() if augment else None
    if kind == "synthetic" or data == "synthetic":
        if hand is None:
            from ..hand.model import load_hand_model

            hand = load_hand_model(hand_model, "right")
        ds = SyntheticImages(hand, n=synthetic_size, seed=seed, negatives=max(1, synthetic_size // 8))
    elif kind == "freihand":
        ds = D.FreiHAND(data, "training", augment=aug, seed=seed, hand_model=hand_model)
    elif kind == "ho3d":
        ds = D.HO3D(data, "train", augment=aug, seed=seed, hand_model=hand_model)
    else:
        raise ValueError(f"unknown dataset {kind!r}")
    if hanco is not None:
        # a few HanCo crops per sample: HanCo's ~860k frames would swamp the hands
        n = max(1, round(len(ds) * HANCO_PER_SAMPLE))
        ds = ConcatDataset([ds, D.HanCoPositives(hanco, max_items=n, augment=aug, seed=seed),
                            D.HanCoNegatives(hanco, max_items=n)])
    return ds


def run(args: argparse.Namespace) -> int:
    """``dahyf train net``."""
    from ..errors import DaHyFUserError
    from ..hand.model import load_hand_model
    from .datasets import FreiHAND
    from .trainer import _dist_info, train

    try:
        cfg = run_config(args)
        source = str(args.mano) if args.mano else "open"  # the folder; cfg.model.hand_model is only its kind
        hand = load_hand_model(source, "right")
        ds = build_dataset(args.dataset, args.data, cfg.augment, cfg.seed, hand=hand, synthetic_size=args.synthetic_size,
                           hanco=args.hanco, hand_model=source)
        val = None
        if args.val_data is not None:
            val = FreiHAND(args.val_data, "evaluation")
        t0 = time.time()
        res = train(cfg, ds, args.out, device=args.device, resume=not args.no_resume, steps_per_epoch=args.steps_per_epoch,
                    hand=hand, val_dataset=val, val_every=args.val_every, pretrained=args.pretrained, init=args.init)
    except (DaHyFUserError, ValueError) as e:
        print(f"dahyf train net: {e}", file=sys.stderr)
        return 2
    if _dist_info()[1] == 0:
        last = res["history"][-1] if res["history"] else {}
        print(json.dumps({"checkpoint": str(res["checkpoint"]), "seconds": round(time.time() - t0, 1),
                          "last_epoch": last, **res["notes"]}, indent=2))
    return 0
