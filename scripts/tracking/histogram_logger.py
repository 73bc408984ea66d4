"""Histograms of every parameter and its gradient, at epoch level."""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events

from scripts.networks.placement import unwrap


class HistogramLogger:
    """Weights and gradients per layer every ``every`` epochs (a histogram of every layer costs about half a second
    on a CPU: too slow per iteration, and per epoch on short epochs)."""

    def __init__(self, summary_writer, network: torch.nn.Module, every: int = 1) -> None:
        self.writer, self.network, self.every = summary_writer, network, int(every)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.every), self)

    def __call__(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        for name, param in unwrap(self.network).named_parameters():
            self.writer.add_histogram(f"weights/{name}", param.detach().float().cpu(), epoch)
            if param.grad is not None:
                self.writer.add_histogram(f"grads/{name}", param.grad.detach().float().cpu(), epoch)
