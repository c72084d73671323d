"""A loaded model ready for inference on normalized batches: one per process (or Beam worker)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from landsight.models.model_file import ModelFile, load_model_file
from landsight.torch_utils import resolve_device


class Predictor:
    """Wraps a MODEL file's network: normalized (N, C, H, W) float32 -> (N, classes, H, W) probabilities."""

    def __init__(self, model_file: ModelFile, device: str = "auto") -> None:
        self.model_file = model_file
        self.device = resolve_device(device)
        self.model = model_file.build().to(self.device)
        if self.device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> Predictor:
        """Read a segmentation MODEL file and build its network on `device`."""
        return cls(load_model_file(path), device)

    @torch.inference_mode()
    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Softmax class probabilities for a normalized batch; spatial size must be a multiple of 32."""
        x = torch.from_numpy(batch).to(self.device)
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = self.model(x)
        else:
            logits = self.model(x.contiguous(memory_format=torch.channels_last))
        return torch.softmax(logits.float(), dim=1).cpu().numpy()
