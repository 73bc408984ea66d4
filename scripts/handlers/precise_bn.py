"""BatchNorm calibration before validation: running statistics averaged over the last training batches."""

from __future__ import annotations

import logging

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events

from scripts.networks.placement import unwrap

logger = logging.getLogger(__name__)

BN_TYPES = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d, torch.nn.SyncBatchNorm)


def batch_norms(model: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in unwrap(model).modules() if isinstance(m, BN_TYPES) and m.track_running_stats]


def average_batch_statistics(model: torch.nn.Module, reset: bool = True) -> list[float | None]:
    """Make every BatchNorm of ``model`` keep the plain mean of the statistics of the batches it sees from now on
    (``momentum=None``: PyTorch's cumulative average), after forgetting its running statistics if ``reset``.

    Running statistics kept with momentum 0.1 are an exponential average dominated by the last few batches (with
    2-volume batches, a handful of volumes); validation then judges the model on noisy normalisation. Averaging
    the batches of the last training iterations before validation gives PreciseBN's population statistics at no
    extra forward pass. Returns the previous momenta for :func:`restore_momentum`."""
    bns = batch_norms(model)
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        if reset:
            bn.reset_running_stats()
        bn.momentum = None
    return momenta


def restore_momentum(model: torch.nn.Module, momenta: list[float | None], average_over_ranks: bool = True) -> None:
    """Put the momenta back; under DDP first average the running statistics over the ranks (``average_over_ranks``),
    so every rank validates with the same normalisation."""
    bns = batch_norms(model)
    if average_over_ranks and idist.get_world_size() > 1:
        for bn in bns:
            bn.running_mean.copy_(idist.all_reduce(bn.running_mean.clone()) / idist.get_world_size())
            bn.running_var.copy_(idist.all_reduce(bn.running_var.clone()) / idist.get_world_size())
    for bn, momentum in zip(bns, momenta, strict=True):
        bn.momentum = momentum


class BatchNormCalibration:
    """Before each validation (every ``interval`` epochs), BatchNorm's running statistics are the average over the
    last ``num_batches`` training iterations (at most back to the previous validation): they start being averaged
    ``num_batches`` iterations before the epoch ends and are fixed when it ends.

    fvcore's ``update_bn_stats`` runs extra forward passes for this; on a CPU those cost 42% of a 6-iteration epoch,
    the training iterations' own forward passes cost nothing. Their statistics come with dropout on and weights
    still moving over the window, as PyTorch's own running statistics do. Attach before the ``ValidationHandler``
    with the same ``interval``, so the statistics are fixed before validation reads them. A run resumed inside a
    window continues it (the running sums and counts are in the checkpointed buffers).
    """

    def __init__(self, network: torch.nn.Module, num_batches: int = 8, interval: int = 1, enabled: bool = True) -> None:
        self.network, self.num_batches, self.interval, self.enabled = network, int(num_batches), int(interval), enabled
        self._momenta: list | None = None

    def attach(self, engine: Engine) -> None:
        if not self.enabled or self.num_batches <= 0 or not batch_norms(self.network):
            return
        engine.add_event_handler(Events.STARTED, self._continue_window)
        engine.add_event_handler(Events.ITERATION_STARTED, self._start_window)
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self._end_window)
        engine.add_event_handler(Events.COMPLETED, self._restore)

    def window(self, iteration: int, epoch_length: int) -> tuple[int, int]:
        """First and last iteration (1-based, global) of the window that ``iteration`` falls in or before."""
        epoch = (iteration - 1) // epoch_length + 1
        validation_epoch = -(-epoch // self.interval) * self.interval
        end = validation_epoch * epoch_length
        return max(end - self.num_batches + 1, (validation_epoch - self.interval) * epoch_length + 1), end

    def _start_window(self, engine: Engine) -> None:
        start, _ = self.window(engine.state.iteration, engine.state.epoch_length)
        if engine.state.iteration == start:
            self._momenta = average_batch_statistics(self.network, reset=True)

    def _continue_window(self, engine: Engine) -> None:
        following = engine.state.iteration + 1
        start, end = self.window(following, engine.state.epoch_length)
        if start < following <= end:
            self._momenta = average_batch_statistics(self.network, reset=False)

    def _end_window(self, engine: Engine) -> None:
        if self._momenta is not None:
            restore_momentum(self.network, self._momenta)
            logger.debug("BatchNorm statistics: average of the last %d training batches", self.num_batches)
            self._momenta = None

    def _restore(self, engine: Engine) -> None:
        if self._momenta is not None:  # a window that no validation closes: nothing to average for
            restore_momentum(self.network, self._momenta, average_over_ranks=False)
            self._momenta = None
