"""BatchNorm calibration before validation (the PreciseBN method)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events

from scripts.training_state import unwrap

logger = logging.getLogger(__name__)

BN_TYPES = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d, torch.nn.SyncBatchNorm)


@torch.no_grad()
def update_bn_stats(model: torch.nn.Module, batches: Iterable[torch.Tensor], slice_batch: int) -> int:
    """Replace every BatchNorm's running mean/var by the exact mean/var of its inputs over ``batches``.

    Running statistics kept with momentum are an exponential average over recent, ever-changing weights, so
    they lag the model that is validated; with small slice batches they are also noisy. Here each BN sees the
    data forward-only in FP32 with momentum 1 (so after a forward its buffers hold that micro-batch's
    statistics), and per-channel sums of x and x² weighted by the number of values are accumulated, giving
    the true mean and (unbiased) variance of all calibration inputs, micro-batched by ``slice_batch`` slices
    to bound memory. Dropout stays off (the statistics are for eval mode); under DDP the sums are all-reduced
    so every rank ends with the same statistics. Returns the number of slices used.
    """
    bns = [m for m in model.modules() if isinstance(m, BN_TYPES) and m.track_running_stats]
    if not bns:
        return 0
    was_training = model.training
    saved = [(bn.momentum, bn.training) for bn in bns]
    sums = [torch.zeros_like(bn.running_mean, dtype=torch.float64) for bn in bns]
    squares = [torch.zeros_like(bn.running_var, dtype=torch.float64) for bn in bns]
    counts = torch.zeros(len(bns), dtype=torch.float64, device=bns[0].running_mean.device)
    model.eval()
    for bn in bns:
        bn.train()
        bn.momentum = 1.0

    def accumulate(index: int, bn: torch.nn.Module) -> Callable:
        def hook(module, inputs, _output):
            x = inputs[0]
            n = x.numel() / x.shape[1]
            mean = bn.running_mean.double()
            var = bn.running_var.double() * (n - 1) / n if n > 1 else torch.zeros_like(mean)
            sums[index] += mean * n
            squares[index] += (var + mean**2) * n
            counts[index] += n

        return hook

    handles = [bn.register_forward_hook(accumulate(i, bn)) for i, bn in enumerate(bns)]
    slices = 0
    try:
        with torch.autocast(device_type=counts.device.type, enabled=False):
            for batch in batches:
                for chunk in batch.split(slice_batch):
                    model(chunk.float())
                    slices += chunk.shape[0]
    finally:
        for handle in handles:
            handle.remove()
    if idist.get_world_size() > 1:
        sums = [idist.all_reduce(s) for s in sums]
        squares = [idist.all_reduce(s) for s in squares]
        counts = idist.all_reduce(counts)
    for bn, total, square, count, (momentum, training) in zip(bns, sums, squares, counts, saved):
        if count > 1:
            mean = total / count
            var = (square / count - mean**2).clamp_min(0) * count / (count - 1)
            bn.running_mean.copy_(mean.to(bn.running_mean.dtype))
            bn.running_var.copy_(var.to(bn.running_var.dtype))
        bn.momentum = momentum
        bn.train(training)
    model.train(was_training)
    return slices


class BatchNormCalibration:
    """Run :func:`update_bn_stats` on ``num_batches`` training batches right before each validation.

    Attach it before the ``ValidationHandler`` with the same ``interval``, so it runs first at that event.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        data_loader: Iterable,
        prepare_batch: Callable,
        device: torch.device,
        num_batches: int = 8,
        slice_batch: int = 32,
        interval: int = 1,
        enabled: bool = True,
    ) -> None:
        self.network, self.data_loader, self.prepare_batch, self.device = network, data_loader, prepare_batch, device
        self.num_batches, self.slice_batch, self.interval, self.enabled = int(num_batches), int(slice_batch), int(interval), enabled

    def attach(self, engine: Engine) -> None:
        if self.enabled and self.num_batches > 0:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self)

    def __call__(self, engine: Engine) -> None:
        images = (self.prepare_batch(b, self.device)[0] for b in itertools.islice(self.data_loader, self.num_batches))
        slices = update_bn_stats(unwrap(self.network), images, self.slice_batch)
        logger.debug("BatchNorm statistics recomputed on %d training slices", slices)
