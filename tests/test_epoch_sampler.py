"""A fixed number of iterations per epoch, items drawn evenly, and every draw reproducible from torch's seed."""

from collections import Counter

import torch
from monai.data import Dataset
from monai.transforms import Compose, RandGaussianNoised
from torch.utils.data import DataLoader

from scripts.data.epoch_sampler import EpochSampler, SeededItems


def draws(sampler, seed):
    torch.manual_seed(seed)
    return list(sampler)


def test_an_epoch_is_iterations_times_batch_whatever_the_dataset_size():
    for size in (3, 12, 500):
        sampler = EpochSampler(size, iterations=7, batch_size=2)
        items = draws(sampler, 0)
        assert len(sampler) == len(items) == 14
        assert all(0 <= index < size for index, _ in items)
    # rounds of permutations: with 14 draws from 3 items each comes up 4 or 5 times
    counts = Counter(index for index, _ in draws(EpochSampler(3, iterations=7, batch_size=2), 1))
    assert sorted(counts.values()) == [4, 5, 5]


def test_draws_follow_torchs_seed():
    sampler = EpochSampler(10, iterations=5, batch_size=2)
    assert draws(sampler, 3) == draws(sampler, 3)
    assert draws(sampler, 3) != draws(sampler, 4)
    assert len({seed for _, seed in draws(sampler, 3)}) == 10  # every item its own transform seed


def test_an_items_random_transforms_depend_on_its_seed_not_on_the_order_or_worker():
    data = [{"image": torch.zeros(1, 4, 4)} for _ in range(3)]
    items = SeededItems(Dataset(data, Compose([RandGaussianNoised(keys="image", prob=1.0)])))
    first = items[(1, 11)]["image"]
    _ = items[(0, 5)], items[(2, 7)]  # other items drawn in between
    assert torch.equal(items[(1, 11)]["image"], first)
    assert not torch.equal(items[(1, 12)]["image"], first)
    # through two worker processes, in batches, as training loads them
    sampler = EpochSampler(3, iterations=4, batch_size=2)
    torch.manual_seed(0)
    keys = list(sampler)
    loaded = torch.cat([b["image"] for b in DataLoader(items, batch_size=2, sampler=keys, num_workers=2)])
    assert torch.equal(loaded, torch.stack([items[k]["image"] for k in keys]))
