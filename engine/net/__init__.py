"""The DaHyF network: backbones, direction maps, SimCC head, positional encoding, regressor, camera, confidence."""
