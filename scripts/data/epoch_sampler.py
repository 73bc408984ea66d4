"""A fixed number of training iterations per epoch, whatever the dataset's size, every draw seeded for exact resume."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from monai.data.utils import set_rnd
from torch.utils.data import Dataset, Sampler


class EpochSampler(Sampler):
    """Yields ``iterations * batch_size`` ``(index, seed)`` pairs per epoch, so an epoch is ``iterations`` optimizer
    steps whether the dataset holds 4 volumes or 400 (nnU-Net's 250-iteration epoch; a 4-volume dataset made
    2-iteration epochs, so the schedule, validation and checkpoints shrank with the data).

    Indices are consecutive random permutations of the dataset, so every item comes up equally often. Each seed
    seeds that item's random transforms (:class:`SeededItems`), so what an item draws does not depend on which worker
    loads it or whether workers persist between epochs. Everything is drawn from torch's global generator when the
    epoch's iterator is created, which ``scripts.handlers.epoch_seeding.SeedEachEpoch`` reseeds from (seed, epoch, rank):
    a resumed run draws what the uninterrupted one did, and DDP ranks draw differently.
    """

    def __init__(self, dataset_size: int, iterations: int, batch_size: int) -> None:
        if int(dataset_size) < 1:
            raise ValueError("EpochSampler needs at least one training item")
        self.dataset_size, self.iterations, self.batch_size = int(dataset_size), int(iterations), int(batch_size)

    def __len__(self) -> int:
        return self.iterations * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        count = len(self)
        rounds = -(-count // self.dataset_size)
        indices = torch.cat([torch.randperm(self.dataset_size, generator=generator) for _ in range(rounds)])[:count]
        seeds = torch.randint(0, 2**31 - 1, (count,), generator=generator)
        return iter(zip(indices.tolist(), seeds.tolist(), strict=True))


class SeededItems(Dataset):
    """``dataset[index]`` with its random transforms seeded by ``seed`` first, for keys ``(index, seed)`` from
    :class:`EpochSampler`."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        # the transform alone: set_rnd on the dataset would also walk its list of items on every call
        set_rnd(getattr(self.dataset, "transform", self.dataset), seed)
        return self.dataset[index]
