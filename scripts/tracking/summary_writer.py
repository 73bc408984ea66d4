"""A TensorBoard writer on rank 0 and a silent stand-in on every other rank."""

from __future__ import annotations

import ignite.distributed as idist
from torch.utils.tensorboard import SummaryWriter


class NullWriter:
    """Accepts every ``SummaryWriter`` call and writes nothing, so handlers need no rank checks."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def summary_writer(log_dir: str, flush_secs: int = 10):
    """``SummaryWriter(log_dir)`` on rank 0, flushed every ``flush_secs`` (not 120 s) so a killed run loses
    little; a :class:`NullWriter` elsewhere (only rank 0 writes event files)."""
    return SummaryWriter(log_dir=log_dir, flush_secs=flush_secs) if idist.get_rank() == 0 else NullWriter()
