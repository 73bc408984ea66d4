"""The training dataset's cache: one file per volume, reused across runs, redone when the scan or a setting changes."""

import errno
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import CacheDataset, Dataset, PersistentDataset

from scripts.data.data_cache import DiskCacheDataset, training_dataset
from tests.conftest import TRAIN_CONFIG


def config_dataset(dataset_dir: Path, cache_dir: Path, **overrides):
    parser = ConfigParser()
    parser.read_config(TRAIN_CONFIG)
    for key, value in {
        "dataset_dir": str(dataset_dir),
        "cache_dir": str(cache_dir),
        "spatial_size": 32,
        "slices_per_volume": 2,
        "num_workers": 0,
        **overrides,
    }.items():
        parser[key] = value
    return parser.get_parsed_content("train#dataset")


def touch_every_item(dataset) -> None:
    for index in range(len(dataset)):
        dataset[index]


def test_disk_cache_one_file_per_volume_reused_by_the_next_run(tmp_path, dataset):
    cache = tmp_path / "cache"
    first = config_dataset(dataset, cache)
    assert isinstance(first, PersistentDataset) and isinstance(first, DiskCacheDataset)
    touch_every_item(first)
    files = sorted(p.name for p in cache.glob("*.pt"))
    assert len(files) == len(first)
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.pt")}

    second = config_dataset(dataset, cache)  # a new run on the same data and settings
    touch_every_item(second)
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.pt")} == stamps  # read, not rewritten

    item = torch.load(cache / files[0], weights_only=True)  # plain tensors: no pickled objects to trust
    assert item["image"].shape[1:3] == (32, 32) and set(item["label"].unique().tolist()) <= {0.0, 1.0}


def test_a_changed_setting_or_a_replaced_scan_is_preprocessed_again(tmp_path, dataset):
    cache = tmp_path / "cache"
    touch_every_item(config_dataset(dataset, cache))
    before = {p.name for p in cache.glob("*.pt")}

    touch_every_item(config_dataset(dataset, cache, spatial_size=48))
    new = {p.name for p in cache.glob("*.pt")} - before
    assert len(new) == len(before)
    for name in new:
        assert torch.load(cache / name, weights_only=True)["image"].shape[1:3] == (48, 48)

    # replace one training scan under the same name: its old cache entry must not be served
    data = config_dataset(dataset, cache)
    path = Path(data.data[0]["image"])
    img = nib.load(path)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32) * 2 + 1, img.affine), path)
    after = {p.name for p in cache.glob("*.pt")}
    fresh = config_dataset(dataset, cache)
    fresh[0]
    assert len({p.name for p in cache.glob("*.pt")} - after) == 1


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def disk_full_as_torch_reports_it(*args, **kwargs):
    """A real full disk under torch.save: its zip writer raises this while handling the file's OSError."""
    try:
        disk_full()
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")  # noqa: B904


@pytest.mark.parametrize("disk_full", [disk_full, disk_full_as_torch_reports_it])
def test_a_full_cache_folder_slows_training_down_instead_of_stopping_it(
    tmp_path, dataset, monkeypatch, caplog, disk_full
):
    data = config_dataset(dataset, tmp_path / "cache")
    monkeypatch.setattr(torch, "save", disk_full)
    with caplog.at_level(logging.WARNING, logger="scripts.data.data_cache"):
        items = [data[i] for i in range(len(data))]
    assert all(item[0]["image"].shape[1:3] == (32, 32) for item in items)
    assert not list((tmp_path / "cache").glob("*.pt"))
    warnings = [r.getMessage() for r in caplog.records if "cannot write the cache" in r.getMessage()]
    assert len(warnings) == 1 and str(tmp_path / "cache") in warnings[0] and "No space left" in warnings[0]


@pytest.mark.parametrize("cache, kind", [("memory", CacheDataset), ("none", Dataset)])
def test_other_cache_modes(tmp_path, dataset, cache, kind):
    built = config_dataset(dataset, tmp_path / "cache", cache=cache)
    assert type(built) is kind and not (tmp_path / "cache").exists()
    assert built[0][0]["image"].shape[1:3] == (32, 32)  # sampled slices, as with the disk cache


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="cache='ram'"):
        training_dataset([], None, cache="ram")


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(p.read_bytes()[:100]),
        lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    ],
)
def test_a_damaged_entry_is_logged_deleted_and_rebuilt_and_training_goes_on(tmp_path, dataset, damage, caplog):
    cache = tmp_path / "cache"
    touch_every_item(config_dataset(dataset, cache))
    entry = sorted(cache.glob("*.pt"))[0]
    good = torch.load(entry, weights_only=True)
    damage(entry)
    with caplog.at_level(logging.WARNING, logger="scripts.data.data_cache"):
        touch_every_item(config_dataset(dataset, cache))  # a later run
    lines = [r.getMessage() for r in caplog.records if r.name == "scripts.data.data_cache"]
    assert lines == [f"cache entry {entry} is unreadable ({lines[0].split('(')[1].split(')')[0]}); deleted and rebuilt"]
    assert torch.equal(torch.load(entry, weights_only=True)["image"], good["image"])  # repaired, for the next run too
    assert not list(cache.glob(".tmp-*"))


def test_a_label_replaced_in_place_with_its_size_and_mtime_kept_is_preprocessed_again(tmp_path, dataset):
    import os

    for gz in (dataset / "labelsTr").glob("*.nii.gz"):  # uncompressed: the same shape always gives the same size
        img = nib.load(gz)
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine), gz.with_suffix(""))
        gz.unlink()
    cache = tmp_path / "cache"
    data = config_dataset(dataset, cache)
    touch_every_item(data)
    entries = {p.name for p in cache.glob("*.pt")}
    label = Path(data.data[0]["label"])
    before = label.stat()
    img = nib.load(label)
    flipped = nib.Nifti1Image(np.ascontiguousarray(np.asarray(img.dataobj)[::-1]), img.affine).to_bytes()
    label.write_bytes(flipped)  # what cp -p, tar or touch -r leave: new bytes, same size, the old mtime
    os.utime(label, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (label.stat().st_size, label.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    config_dataset(dataset, cache)[0]
    assert len({p.name for p in cache.glob("*.pt")} - entries) == 1
