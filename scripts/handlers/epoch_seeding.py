"""Seed every random number generator from (seed, epoch, rank) at the start of each epoch."""

from __future__ import annotations

import random

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import Engine, Events


class SeedEachEpoch:
    """``set_determinism`` seeds once per process, so a run resumed at epoch k would draw other batches,
    augmentations and dropout masks than the run it continues. Reseeding torch, NumPy and Python when each epoch
    starts (before Ignite creates that epoch's data iterator, from which ``scripts.data.epoch_sampler.EpochSampler``
    draws the items and the seeds of their random transforms) makes epoch k the same whether or not the run
    stopped before it. The rank enters the seed so DDP processes augment differently."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        seed = (self.seed + 1_000_003 * engine.state.epoch + 7919 * idist.get_rank()) % 2**32
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
