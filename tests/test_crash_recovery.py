"""SIGKILL a training process at several moments, including mid-checkpoint-write, and resume each time;
a full disk stops the run cleanly. No partial file may ever carry a final name."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import BUNDLE, FAST, LOGGING, METADATA, TRAIN_CONFIG, cli_args, make_workflow, write_dataset

SETTINGS = {**FAST, "epochs": 5, "ckpt_period": 1, "ckpt_keep": 2, "bn_calibration_batches": 1}


def start(root: Path, data: Path, resume: bool) -> subprocess.Popen:
    args = [
        "--config_file",
        TRAIN_CONFIG,
        "--meta_file",
        METADATA,
        "--logging_file",
        LOGGING,
        "--bundle_root",
        str(root),
        "--dataset_dir",
        str(data),
        *cli_args(SETTINGS),
        "--resume",
        str(resume).lower(),
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "monai.bundle", "run", *args],
        cwd=BUNDLE,
        env={**os.environ, "PYTHONPATH": str(BUNDLE)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def checkpoints(root: Path) -> Path | None:
    found = list((root / "runs" / "SMALabeller").glob("*/checkpoints")) if (root / "runs").exists() else []
    return found[0] if found else None


def kill_when(process: subprocess.Popen, moment, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not moment():
        assert process.poll() is None, process.stdout.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the moment never came"
        time.sleep(0.0005)
    process.send_signal(signal.SIGKILL)
    process.wait()


def writing(root):
    def moment():
        folder = checkpoints(root)
        return folder is not None and any(p.name.startswith(".tmp-") for p in folder.iterdir())

    return moment


def epoch_done(root, epoch):
    def moment():
        folder = checkpoints(root)
        try:
            return torch.load(folder / "last.pth", weights_only=True)["epoch"] >= epoch
        except Exception:  # not there yet, or being replaced
            return False

    return moment


def assert_every_final_file_loads(root: Path) -> None:
    folder = checkpoints(root)
    for path in folder.iterdir() if folder else []:
        if not path.name.startswith(".tmp-"):
            state = torch.load(path, weights_only=True)
            assert "model_state" in state, path


def test_killed_runs_resume_and_finish(tmp_path):
    data = write_dataset(tmp_path / "data")
    moments = [
        lambda: (tmp_path / "runs").exists() and checkpoints(tmp_path) is not None,  # before any checkpoint
        writing(tmp_path),  # in the middle of writing one
        epoch_done(tmp_path, 3),  # right after one
        writing(tmp_path),
    ]
    for attempt, moment in enumerate(moments):
        kill_when(start(tmp_path, data, resume=attempt > 0), moment)
        assert_every_final_file_loads(tmp_path)
    final = start(tmp_path, data, resume=True)
    out = final.communicate(timeout=600)[0].decode()
    assert final.returncode == 0, out[-3000:]
    assert_every_final_file_loads(tmp_path)
    folder = checkpoints(tmp_path)
    assert torch.load(folder / "last.pth", weights_only=True)["epoch"] == 5
    assert not list(folder.glob(".tmp-*")), "stale temporary files left behind"
    assert (tmp_path / "models" / "model.pt").is_file()


def test_disk_full_stops_cleanly_and_keeps_earlier_checkpoints(tmp_path, monkeypatch, capfd):
    data = write_dataset(tmp_path / "data")
    # no data cache, so every torch.save counted here is a checkpoint write (a full cache folder: test_data_cache.py)
    workflow = make_workflow(tmp_path, data, epochs=3, cache="none")
    real_save, calls = torch.save, {"n": 0}

    def save_until_disk_full(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:  # epoch 1 writes best.pth and last.pth; epoch 2's first write fails
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_disk_full)
    # epoch 2's first write is best.pth when its validation loss improved, else last.pth
    with pytest.raises(SystemExit, match=r"run stopped at epoch 2: cannot write (best|last)\.pth in .*: No space left"):
        workflow.run()
    monkeypatch.undo()
    folder = checkpoints(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["best.pth", "last.pth"]
    for name in ("best.pth", "last.pth"):
        assert torch.load(folder / name, weights_only=True)["epoch"] == 1
    assert "Traceback" not in capfd.readouterr().out


def test_a_second_process_resuming_a_run_that_is_still_training_is_refused(tmp_path):
    data = write_dataset(tmp_path / "data")
    args = [
        "--config_file",
        TRAIN_CONFIG,
        "--meta_file",
        METADATA,
        "--logging_file",
        LOGGING,
        "--bundle_root",
        str(tmp_path),
        "--dataset_dir",
        str(data),
        *cli_args({**SETTINGS, "epochs": 400}),
    ]
    env = {**os.environ, "PYTHONPATH": str(BUNDLE)}
    first = subprocess.Popen(
        [sys.executable, "-m", "monai.bundle", "run", *args],
        cwd=BUNDLE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not epoch_done(tmp_path, 1)():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        folder = checkpoints(tmp_path)
        second = subprocess.run(
            [sys.executable, "-m", "monai.bundle", "run", *args, "--resume", "true"],
            cwd=BUNDLE,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert first.poll() is None, "the first run should still be training"
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 1
    assert f"run folder {folder.parent} is in use by process {first.pid}" in second.stderr, second.stderr[-2000:]
    assert "Traceback" not in second.stderr
    second_log = second.stdout + second.stderr
    assert "Resumed from" not in second_log and "Epoch[" not in second_log  # refused before reading or training
