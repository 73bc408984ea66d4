"""Per-iteration training scalars that MONAI's TensorBoardStatsHandler does not log."""

from __future__ import annotations

import time

import torch
from ignite.engine import Engine, Events


class TrainingScalarsLogger:
    """Learning rate, global gradient norm (L2 over all parameters) and seconds per iteration, every
    ``every`` iterations: MONAI's handler logs engine outputs and metrics, not optimizer or gradient state,
    and a OneCycle schedule or an exploding gradient is only visible per iteration."""

    def __init__(
        self, summary_writer, optimizer: torch.optim.Optimizer, network: torch.nn.Module, every: int = 1
    ) -> None:
        self.writer, self.optimizer, self.network, self.every = summary_writer, optimizer, network, int(every)
        self._started = 0.0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED(every=self.every), self)

    def _start(self, engine: Engine) -> None:
        self._started = time.perf_counter()

    def __call__(self, engine: Engine) -> None:
        step = engine.state.iteration
        grads = [p.grad.detach() for p in self.network.parameters() if p.grad is not None]
        if grads:
            norm = torch.linalg.vector_norm(
                torch.stack(torch._foreach_norm(grads)).float()
            )  # one fused kernel for all tensors
            self.writer.add_scalar("grad_norm", float(norm), step)
        self.writer.add_scalar("lr", self.optimizer.param_groups[0]["lr"], step)
        self.writer.add_scalar("iteration_seconds", time.perf_counter() - self._started, step)
