"""scripts/networks/pass_progress.py: a scan that takes long logs where it is (plane, slices done of the plane's,
pass, time so far and left), also inside one long pass; a quick one logs nothing."""

import logging
import re
import time

import torch
from monai.data import MetaTensor

from scripts.networks.volume_inferer import volume_inferer

SETTINGS = {"unet_dimensions": "2D", "spatial_size": 16, "slice_axis": "auto", "context_slices": 0}
LINE = re.compile(
    r"(\w+) plane: (\d+) of (\d+) (slices|windows) \(pass (\d+) of (\d+)\), \d+ s so far, about \d+ s left"
)


def slow_network(seconds: float, calls: list | None = None):
    def network(x):
        time.sleep(seconds)
        if calls is not None:
            calls.append(x.shape[0])
        return x[:, :1]

    return network


def progress_lines(caplog) -> list[tuple]:
    lines = [r.getMessage() for r in caplog.records if r.name == "scripts.networks.pass_progress"]
    matched = [LINE.fullmatch(line) for line in lines]
    assert all(matched), lines
    return [(m[1], int(m[2]), int(m[3]), m[4], int(m[5]), int(m[6])) for m in matched]


def test_a_long_scan_logs_plane_slices_done_of_the_planes_and_time_left(caplog):
    inferer = volume_inferer(SETTINGS, planes=("axial", "coronal", "sagittal"), slice_batch=4, tta=True)
    inferer.after_s = inferer.every_s = 0.0  # every network call counts as long
    volume = torch.rand(1, 1, 12, 14, 10)  # sagittal 12, coronal 14, axial 10 slices
    with caplog.at_level(logging.INFO, logger="scripts.networks.pass_progress"):
        inferer(volume, slow_network(0.001))
    lines = progress_lines(caplog)
    # 4 flips x (axial 10 slices in 3 calls, coronal 14 in 4, sagittal 12 in 3); the very last call needs no line
    assert len(lines) == 4 * (3 + 4 + 3) - 1
    assert lines[:4] == [
        ("axial", 4, 10, "slices", 1, 12),
        ("axial", 8, 10, "slices", 1, 12),
        ("axial", 10, 10, "slices", 1, 12),
        ("coronal", 4, 14, "slices", 2, 12),
    ]
    assert lines[-1] == ("sagittal", 8, 12, "slices", 12, 12)


def test_one_long_pass_is_followed_slice_by_slice_with_the_time_left(caplog):
    """One plane, no flips: one pass, which per-pass lines would leave silent until the scan is done."""
    inferer = volume_inferer(SETTINGS, planes=("auto",), slice_batch=2, tta=False)
    inferer.after_s = inferer.every_s = 0.0
    volume = MetaTensor(torch.rand(1, 1, 16, 16, 8), affine=torch.diag(torch.tensor([1.0, 1.0, 3.0, 1.0])))
    with caplog.at_level(logging.INFO, logger="scripts.networks.pass_progress"):
        inferer(volume, slow_network(0.02))
    assert progress_lines(caplog) == [("axial", n, 8, "slices", 1, 1) for n in (2, 4, 6)]


def test_time_left_counts_the_slices_of_every_pass_still_to_come(caplog):
    inferer = volume_inferer(SETTINGS, planes=("axial", "coronal"), slice_batch=100, tta=False)
    volume = torch.rand(1, 1, 12, 30, 10)  # axial 10 slices, then coronal 30
    inferer.schedule = inferer.passes_of(volume)
    assert inferer.schedule == [("axial", 10), ("coronal", 30)]
    inferer.after_s = inferer.every_s = 0.0
    inferer.start, inferer.in_pass, inferer.before_pass = time.perf_counter() - 20.0, 10, 0  # 10 slices in 20 s
    inferer.last_line = float("-inf")
    with caplog.at_level(logging.INFO, logger="scripts.networks.pass_progress"):
        inferer.report()
    assert caplog.messages == ["axial plane: 10 of 10 slices (pass 1 of 2), 20 s so far, about 60 s left"]


def test_a_3d_model_counts_the_windows_of_its_sliding_window(caplog):
    settings = {**SETTINGS, "unet_dimensions": "3D", "patch_size": [16, 16, 8]}
    inferer = volume_inferer(settings, planes=("axial",), sw_batch_size=1, sw_overlap=0.25, tta=False)
    inferer.after_s = inferer.every_s = 0.0
    calls = []
    with caplog.at_level(logging.INFO, logger="scripts.networks.pass_progress"):
        inferer(torch.rand(1, 1, 12, 14, 20), slow_network(0.0, calls))
    lines = progress_lines(caplog)
    windows = len(calls)  # 20 slices deep, windows 8 deep every 6: 3 windows
    assert windows == 3 and lines == [("axial", n, windows, "windows", 1, 1) for n in range(1, windows)]


def test_a_quick_scan_logs_nothing(caplog):
    inferer = volume_inferer(SETTINGS, planes=("axial", "coronal", "sagittal"), slice_batch=64, tta=False)
    with caplog.at_level(logging.INFO, logger="scripts.networks.pass_progress"):
        inferer(torch.rand(1, 1, 12, 14, 10), slow_network(0.0))
    assert inferer.passes == 3 and not caplog.records


def test_a_plane_named_twice_is_one_pass():
    """``auto`` and the plane it chooses run once (the planes inferer runs them once)."""
    inferer = volume_inferer(SETTINGS, planes=("auto", "axial"), slice_batch=64, tta=True)
    inferer(torch.rand(1, 1, 12, 14, 10), slow_network(0.0))
    assert inferer.passes == 4 and inferer.schedule == [("axial", 10)] * 4
