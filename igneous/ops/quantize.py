"""Affinity quantization: float in [0, 1] → uint8 (channel 0)."""

from __future__ import annotations

import numpy as np

__all__ = ["quantize_affinities"]


def quantize_affinities(image: np.ndarray) -> np.ndarray:
    """First channel × 255, clipped to [0, 255] and rounded down, as uint8 (x, y, z, 1)."""
    chan = np.asarray(image[..., 0:1] if image.ndim == 4 else image[..., np.newaxis], dtype=np.float32)
    return np.asfortranarray(np.clip(chan * 255.0, 0, 255).astype(np.uint8))
