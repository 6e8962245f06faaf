"""Synthetic right hands drawn as coloured skeletons on noise, with exact labels (tests, smoke runs, the GPU check)."""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..capture.crops import hand_boxes
from ..constants import CROP_SIZE
from .augment import crop_sample, finish_sample


class SyntheticImages(Dataset):
    """Synthetic right hands drawn as coloured skeletons on noise, with exact labels (tests, smoke runs).

    Poses, shapes, cameras and placement come from :mod:`dahyf.train.synthetic` (anatomical limits);
    the image shows the projected 21-keypoint skeleton (one colour per finger, depth-shaded joints).
    ``negatives`` extra samples are skeleton-free noise crops (is_hand = 0). ``crop_size`` is s_p (224;
    smaller values go with a ``DaHyFConfig(crop_size=...)`` for quick CPU experiments).
    """

    def __init__(self, hand_model, n: int = 64, seed: int = 0, negatives: int = 0, image_scale: float = 0.5,
                 crop_size: int = CROP_SIZE):
        from ..geometry import project_points
        from . import synthetic as S

        g = torch.Generator().manual_seed(seed)
        axes = S.joint_axes(hand_model(torch.zeros(1, 16, 3)).joints[0].detach().numpy(),
                            hand_model(torch.zeros(1, 16, 3)).keypoints[0, [4, 8, 12, 16, 20]].detach().numpy())
        with torch.no_grad():
            self.pose = S.sample_poses(g, n, axes)
            self.betas = S.sample_betas(g, n, std=0.5)
            image_size, focal = S.sample_cameras(g, n)
            self.image_size = (image_size * image_scale).round()
            self.focal = focal * image_scale
            kp = hand_model(self.pose, self.betas).keypoints
            transl = S.place_hands(g, kp, self.image_size, self.focal, (0.25, 0.5), (0.25, 0.75))
            self.joints3d = kp + transl[:, None]
            self.uv = project_points(self.joints3d, self.focal, self.image_size)
        self.n, self.negatives, self.seed, self.crop_size = n, negatives, seed, crop_size

    def __len__(self) -> int:
        return self.n + self.negatives

    @property
    def num_negatives(self) -> int:
        """Non-hand samples (for L_c)."""
        return self.negatives

    def render(self, i: int) -> np.ndarray:
        """(H, W, 3) uint8 image of sample ``i``."""
        from ..hand.tables import KEYPOINT_BONES

        W, H = (int(v) for v in self.image_size[i % self.n])
        rng = np.random.default_rng((self.seed, i))
        img = rng.integers(0, 60, (H, W, 3), dtype=np.uint8)
        if i >= self.n:
            return img
        uv = self.uv[i].numpy()
        z = self.joints3d[i, :, 2].numpy()
        colours = [(255, 80, 80), (80, 255, 80), (80, 80, 255), (255, 255, 80), (255, 80, 255)]
        thick = max(2, int(0.02 * float(np.ptp(uv, 0).max())))
        for p, c in KEYPOINT_BONES:
            col = colours[(c - 1) // 4]
            cv2.line(img, tuple(int(v) for v in uv[p]), tuple(int(v) for v in uv[c]), col, thick, cv2.LINE_AA)
        zn = (z - z.min()) / max(float(np.ptp(z)), 1e-6)
        for k in range(21):
            shade = int(255 * (1 - 0.7 * zn[k]))
            cv2.circle(img, tuple(int(v) for v in uv[k]), thick + 1, (shade, shade, shade), -1, cv2.LINE_AA)
        return img

    def __getitem__(self, i: int) -> dict:
        k = i % self.n
        img = self.render(i)
        uv = self.uv[k].numpy().astype(np.float64)
        box = hand_boxes(uv[None])[0]
        if i >= self.n:  # negative: same box, no hand drawn
            c = crop_sample(img, box, self.image_size[k].numpy(), float(self.focal[k]), uv, None, None,
                            crop_size=self.crop_size)
            return finish_sample(c, self.image_size[k].numpy(), float(self.focal[k]), is_hand=False)
        c = crop_sample(img, box, self.image_size[k].numpy(), float(self.focal[k]), uv,
                        self.joints3d[k].numpy().astype(np.float64), self.pose[k].numpy().astype(np.float64),
                        crop_size=self.crop_size)
        return finish_sample(c, self.image_size[k].numpy(), float(self.focal[k]), self.betas[k].numpy(), has_mano=True)
