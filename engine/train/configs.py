"""Training configurations: the paper's recipe and every ablation row of its Table 4.

``get_config(name)`` returns a frozen :class:`TrainConfig`. Names:

* ``paper`` — HRNet-W64, full model (GDM + SJCP + PE + L_c), Adam lr 5e-5 ÷10 after epoch 250,
  500 epochs, global batch 128 (32 per GPU on 4 GPUs with ``torchrun --nproc_per_node 4``),
  L_c on for the last 100 epochs.
* ``paper_ho3d`` — the HO3D fine-tune of a FreiHAND ``paper`` checkpoint (``--init``): 3 epochs at the
  rate the FreiHAND schedule ends at (5e-6), L_c on throughout, HO3D's fingertip convention.
* the Table 4 rows on ResNet-50 like the paper's ablation (same recipe otherwise), ``r50_<row>`` for
  the rows of :data:`TABLE4_ROWS`.
* ``light_full`` — the full model on the light CPU backbone (smoke runs, tests).

How the rows are read (each row names the component it changes; each differs from the row it is
compared with — its ``base`` — in exactly one of: direction map, 2-D joint head, joint encoding, L_c):
"+GDM" concatenates the Global Direction Map ahead of both conditioned convolution stages; "+heatmap"
adds the 2-D heatmap joint head (L2 on Gaussian maps, arg-max decoding) whose joints are fed to the
regressor; "+L_c" trains the projection confidence contrastively; "SJCP" replaces the heatmap head by
the SimCC head; "+PE" feeds the positional encoding V_PE of the 2-D joints instead of the joints
themselves; "LDM" replaces the GDM of the full model by the crop-local map.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ..net.dahyf_net import DaHyFConfig


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes
    ----------
    name : config name; model : the network variant.
    epochs : total epochs; lr : Adam learning rate; lr_milestones : epochs after which lr ÷ 1/lr_gamma.
    batch_size : GLOBAL batch (split evenly over DDP processes).
    contrastive_epochs : L_c is on for the last this-many epochs (only if ``model.contrastive``).
    amp : mixed precision (float16 autocast + GradScaler) on CUDA; ignored on CPU.
    num_workers : DataLoader workers per process; seed : initialisation / shuffling / augmentation seed.
    augment : use the training augmentation; grad_clip : max gradient norm (0: off).
    contrastive_margin : L_c's margin on the cosine distance (``dahyf.net.losses.contrastive_loss``).
    """

    name: str
    model: DaHyFConfig = field(default_factory=DaHyFConfig)
    epochs: int = 500
    lr: float = 5e-5
    lr_milestones: tuple[int, ...] = (250,)
    lr_gamma: float = 0.1
    batch_size: int = 128
    contrastive_epochs: int = 100
    amp: bool = True
    num_workers: int = 8
    seed: int = 0
    augment: bool = True
    grad_clip: float = 0.0
    contrastive_margin: float = 1.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["lr_milestones"] = list(self.lr_milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["model"] = DaHyFConfig.from_dict(d["model"])
        d["lr_milestones"] = tuple(d["lr_milestones"])
        return cls(**d)


#: Table 4 rows in order: name → (direction_map, joint_head, positional_encoding, contrastive, base row).
TABLE4_ROWS: dict[str, tuple[str, str, bool, bool, str | None]] = {
    "baseline": ("none", "none", False, False, None),
    "gdm": ("gdm", "none", False, False, "baseline"),
    "gdm_heatmap": ("gdm", "heatmap", False, False, "gdm"),
    "gdm_heatmap_lc": ("gdm", "heatmap", False, True, "gdm_heatmap"),
    "gdm_sjcp_lc": ("gdm", "simcc", False, True, "gdm_heatmap_lc"),
    "full": ("gdm", "simcc", True, True, "gdm_sjcp_lc"),
    "ldm_full": ("ldm", "simcc", True, True, "full"),
}


def model_config(row: str, backbone: str = "hrnet_w64", **kw) -> DaHyFConfig:
    """The network of a Table 4 row on a backbone."""
    if row not in TABLE4_ROWS:
        raise ValueError(f"unknown Table 4 row {row!r}; choose one of {sorted(TABLE4_ROWS)}")
    dm, head, pe, lc, _ = TABLE4_ROWS[row]
    return DaHyFConfig(name=row, backbone=backbone, direction_map=dm, joint_head=head,
                       positional_encoding=pe, contrastive=lc, **kw)


def _build() -> dict[str, TrainConfig]:
    paper = TrainConfig("paper", model_config("full", "hrnet_w64"))
    out = {"paper": paper,
           "paper_ho3d": replace(paper, name="paper_ho3d", model=replace(paper.model, keypoints="ho3d"), epochs=3,
                                 lr=5e-6, lr_milestones=(), contrastive_epochs=3)}
    for row in TABLE4_ROWS:
        out[f"r50_{row}"] = TrainConfig(f"r50_{row}", model_config(row, "resnet50"))
    out["light_full"] = TrainConfig("light_full", model_config("full", "light", regressor_width=512),
                                    batch_size=32, num_workers=2)
    return out


CONFIGS: dict[str, TrainConfig] = _build()


def get_config(name: str, **overrides) -> TrainConfig:
    """A named config, with any :class:`TrainConfig` field overridden (e.g. ``epochs=2``)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose one of {', '.join(CONFIGS)}")
    return replace(CONFIGS[name], **{k: v for k, v in overrides.items() if v is not None})
