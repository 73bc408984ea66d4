"""How far the prediction of one long scan has come, so that a slow machine does not sit silent for minutes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
from monai.inferers import Inferer

logger = logging.getLogger(__name__)


class PassProgress(Inferer):
    """Runs ``inferer`` and logs a line after each pass over the scan (one plane, under one flip of the flip TTA),
    once the scan has taken ``after_s`` seconds: ``coronal plane done (pass 5 of 12), 14 s so far, about 20 s left``.
    A scan predicted within ``after_s`` logs nothing, so validation and quick scans stay quiet. The planes inferer
    calls :meth:`pass_done` (``on_pass``); ``passes`` is how many a scan takes (planes x flips)."""

    def __init__(self, inferer: Inferer, passes: int, after_s: float = 10.0) -> None:
        super().__init__()
        self.inferer, self.passes, self.after_s = inferer, max(1, int(passes)), float(after_s)
        self.start, self.done = 0.0, 0

    def __call__(self, inputs: torch.Tensor, network: Callable, *args, **kwargs) -> torch.Tensor:
        self.start, self.done = time.perf_counter(), 0
        return self.inferer(inputs, network, *args, **kwargs)

    def pass_done(self, plane: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        if elapsed < self.after_s or self.done >= self.passes:
            return
        left = elapsed / self.done * (self.passes - self.done)
        logger.info(
            "%s plane done (pass %d of %d), %.0f s so far, about %.0f s left",
            plane,
            self.done,
            self.passes,
            elapsed,
            left,
        )
