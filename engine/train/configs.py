"""Training configurations: the paper's recipe and every ablation row of its Table 4.

``get_config(name)`` returns a frozen :class:`TrainConfig`. Names:

* ``paper`` — HRNet-W64, full model (GDM + SJCP + PE + L_c), Adam lr 5e-5 ÷10 after epoch 250,
  500 epochs, global batch 128 (32 per GPU on 4 GPUs with ``torchrun --nproc_per_node 4``),
  L_c on for the last 100 epochs.
* the Table 4 rows, on ResNet-50 like the paper's ablation (same recipe otherwise):
  ``r50_baseline``, ``r50_gdm``, ``r50_gdm_heatmap``, ``r50_gdm_heatmap_lc`` (the "+L_c" row),
  ``r50_ldm_sjcp_lc``, ``r50_gdm_sjcp_lc``, ``r50_full``.
* ``light_full`` — the full model on the light CPU backbone (smoke runs, tests).

How the rows are read (the paper's table names the added component per row): "+GDM" fuses the
Global Direction Map into both feature maps; "+heatmap" adds the 2-D heatmap joint head and its
L_2d; "+L_c" trains the projection confidence contrastively; "SJCP" replaces the heatmap head by the
SimCC head; "full" additionally feeds the positional encoding V_PE of the 2-D joints to the regressor.
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


#: Table 4 rows: name → (direction_map, joint_head, positional_encoding, contrastive).
TABLE4_ROWS: dict[str, tuple[str, str, bool, bool]] = {
    "baseline": ("none", "none", False, False),
    "gdm": ("gdm", "none", False, False),
    "gdm_heatmap": ("gdm", "heatmap", False, False),
    "gdm_heatmap_lc": ("gdm", "heatmap", False, True),
    "ldm_sjcp_lc": ("ldm", "simcc", False, True),
    "gdm_sjcp_lc": ("gdm", "simcc", False, True),
    "full": ("gdm", "simcc", True, True),
}


def model_config(row: str, backbone: str = "hrnet_w64", **kw) -> DaHyFConfig:
    """The network of a Table 4 row on a backbone."""
    if row not in TABLE4_ROWS:
        raise ValueError(f"unknown Table 4 row {row!r}; choose one of {sorted(TABLE4_ROWS)}")
    dm, head, pe, lc = TABLE4_ROWS[row]
    return DaHyFConfig(name=row, backbone=backbone, direction_map=dm, joint_head=head,
                       positional_encoding=pe, contrastive=lc, **kw)


def _build() -> dict[str, TrainConfig]:
    out = {"paper": TrainConfig("paper", model_config("full", "hrnet_w64"))}
    for row in TABLE4_ROWS:
        out[f"r50_{row}"] = TrainConfig(f"r50_{row}", model_config(row, "resnet50"))
    out["light_full"] = TrainConfig("light_full", model_config("full", "light", hidden=(512, 512)),
                                    batch_size=32, num_workers=2)
    return out


CONFIGS: dict[str, TrainConfig] = _build()


def get_config(name: str, **overrides) -> TrainConfig:
    """A named config, with any :class:`TrainConfig` field overridden (e.g. ``epochs=2``)."""
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose one of {', '.join(CONFIGS)}")
    return replace(CONFIGS[name], **{k: v for k, v in overrides.items() if v is not None})
