"""scripts/networks/pass_progress.py: a scan that takes long logs a line per pass (plane, passes done, time left);
a quick one logs nothing."""

import logging

import torch

from scripts.networks.volume_inferer import volume_inferer

SETTINGS = {"unet_dimensions": "2D", "spatial_size": 16, "slice_axis": "auto", "context_slices": 0}


def slow_network(seconds: float):
    def network(x):
        import time

        time.sleep(seconds)
        return x[:, :1]

    return network


def test_a_long_scan_logs_each_pass_with_its_plane_and_the_time_left(caplog):
    inferer = volume_inferer(SETTINGS, planes=("axial", "coronal", "sagittal"), slice_batch=64, tta=True)
    inferer.after_s = 0.0  # every pass counts as long
    volume = torch.rand(1, 1, 12, 14, 10)
    with caplog.at_level(logging.INFO, logger="scripts.networks.pass_progress"):
        inferer(volume, slow_network(0.01))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 11  # 3 planes x 4 flips, the last pass needs no line
    assert lines[0].startswith("axial plane done (pass 1 of 12)") and "s left" in lines[0]
    assert lines[1].startswith("coronal plane done (pass 2 of 12)")
    assert lines[2].startswith("sagittal plane done (pass 3 of 12)")
    assert lines[-1].startswith("coronal plane done (pass 11 of 12)")


def test_a_quick_scan_logs_nothing(caplog):
    inferer = volume_inferer(SETTINGS, planes=("axial", "coronal", "sagittal"), slice_batch=64, tta=False)
    with caplog.at_level(logging.INFO, logger="scripts.networks.pass_progress"):
        inferer(torch.rand(1, 1, 12, 14, 10), slow_network(0.0))
    assert inferer.passes == 3 and not caplog.records
