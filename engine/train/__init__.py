"""Training: datasets, losses, trainer (single GPU and torchrun DDP)."""
