"""Per-epoch histograms of every parameter and its gradient."""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events

from scripts.training_state import unwrap


class HistogramLogger:
    """Weights and gradients per layer once an epoch (histograms are too slow to write per iteration)."""

    def __init__(self, summary_writer, network: torch.nn.Module) -> None:
        self.writer, self.network = summary_writer, network

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        for name, param in unwrap(self.network).named_parameters():
            self.writer.add_histogram(f"weights/{name}", param.detach().float().cpu(), epoch)
            if param.grad is not None:
                self.writer.add_histogram(f"grads/{name}", param.grad.detach().float().cpu(), epoch)
