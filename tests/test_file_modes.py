"""Every file the bundle writes gets the mode an ordinary write would (0666 less the umask), and no log line names a
temporary file: ``tempfile.mkstemp`` creates 0600, which kept masks, models, checkpoints and tables from a lab's group.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scripts.common.durable_write import replace_durably, save_durably, write_text_durably
from scripts.persistence.durable_disk_saver import DurableDiskSaver
from tests.conftest import (
    BUNDLE,
    EVALUATE_CONFIG,
    FAST,
    INFERENCE_CONFIG,
    LOGGING,
    METADATA,
    ONE_THREAD_ENV,
    TRAIN_CONFIG,
    VOLUMES,
    checkpoint_dir,
    cli_args,
    write_dataset,
)

UMASKS = [0o022, 0o002]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """A setter of the process's umask; the former one is put back after the test (the umask is process-wide)."""
    before = os.umask(0o022)
    os.umask(before)
    yield lambda value: os.umask(value)
    os.umask(before)


def test_durable_writes_take_the_current_umask_and_leave_it_alone(tmp_path, umask):
    from scripts.common.durable_write import current_umask, ordinary_file_mode

    for value in UMASKS:  # read anew on every write: a program may change its umask between two
        umask(value)
        assert current_umask() == value and ordinary_file_mode() == 0o666 & ~value
        folder = tmp_path / oct(value)
        write_text_durably("case,dice\n", folder / "metrics.csv")
        save_durably({"w": torch.ones(1)}, folder / "model.pt")
        replace_durably(lambda tmp: tmp.write_bytes(b"onnx"), folder / "model.onnx", suffix=".onnx")
        DurableDiskSaver(folder / "checkpoints")({"w": torch.ones(1)}, "last.pth")
        written = [*folder.glob("*"), folder / "checkpoints" / "last.pth"]
        assert {p.name: mode(p) for p in written if p.is_file()} == {
            name: 0o666 & ~value for name in ("metrics.csv", "model.pt", "model.onnx", "last.pth")
        }
        assert current_umask() == value  # read, not changed


def run(args: list[str], mask: int, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m <args>`` in a real subprocess under umask ``mask``, one thread, from ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(BUNDLE), **ONE_THREAD_ENV}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: os.umask(mask),
    )


def bundle(config: str, root: Path, data: Path, *extra: str) -> list[str]:
    return [
        "monai.bundle",
        "run",
        "--config_file",
        config,
        "--meta_file",
        METADATA,
        "--logging_file",
        LOGGING,
        "--bundle_root",
        str(root),
        "--dataset_dir",
        str(data),
        *extra,
    ]


@pytest.fixture(scope="module", params=UMASKS, ids=["umask022", "umask002"])
def outputs(request, tmp_path_factory):
    """Train (1 epoch of 2 iterations, 32 px), predict, evaluate and export to ONNX under one umask, each as the
    README runs it; the bundle's folder, the masks' folder and each command's output."""
    mask = request.param
    root = tmp_path_factory.mktemp(f"umask{mask:03o}")
    data = write_dataset(root / "data", volumes=VOLUMES[:3])  # 3 scans: 2 to train, 1 to validate
    same = cli_args({"spatial_size": FAST["spatial_size"], "slice_batch": FAST["slice_batch"], "num_workers": 0})
    logs = {}
    train = {**FAST, "amp": "false", "device": "cpu"}
    logs["train"] = run(bundle(TRAIN_CONFIG, root, data, *cli_args(train)), mask, BUNDLE)
    masks = root / "masks"
    predict = ["--output_dir", str(masks), "--tta", "false", "--device", "cpu", *same]
    logs["inference"] = run(bundle(INFERENCE_CONFIG, root, data / "imagesTr", *predict), mask, BUNDLE)
    evaluate = f"['{TRAIN_CONFIG}','{EVALUATE_CONFIG}']"
    logs["evaluate"] = run(bundle(evaluate, root, data, "--tta", "false", "--device", "cpu", *same), mask, BUNDLE)
    onnx = ["--ckpt_file", str(root / "models" / "model.pt"), "--filepath", str(root / "models" / "model.onnx")]
    if importlib.util.find_spec("onnxruntime"):  # the optional requirements-onnx.txt
        logs["export"] = run(["scripts.tools.onnx_export", *onnx], mask, BUNDLE)
    for step, result in logs.items():
        assert result.returncode == 0, f"{step}: {result.stderr[-3000:]}"
    return {"umask": mask, "root": root, "data": data, "masks": masks, "logs": logs}


def test_models_checkpoints_masks_tables_and_exports_are_readable_by_the_group(outputs):
    expected = 0o666 & ~outputs["umask"]
    root = outputs["root"]
    named = [
        root / "models" / "model.pt",
        root / "models" / "model.json",
        checkpoint_dir(root / "runs") / "best.pth",
        checkpoint_dir(root / "runs") / "last.pth",
        *sorted(outputs["masks"].glob("*.nii.gz")),
        root / "runs" / "SMALabeller" / "eval" / "metrics.csv",
        root / "runs" / "SMALabeller" / "eval" / "summary.json",
    ]
    if "export" in outputs["logs"]:
        named.append(root / "models" / "model.onnx")
    assert len(list(outputs["masks"].glob("*.nii.gz"))) == 3
    assert {str(p.relative_to(root)): oct(mode(p)) for p in named} == {
        str(p.relative_to(root)): oct(expected) for p in named
    }
    # and everything else the runs left (caches, TensorBoard events, the run lock): the test's own scans aside
    everything = [p for p in root.rglob("*") if p.is_file() and outputs["data"] not in p.parents]
    assert {str(p.relative_to(root)): oct(mode(p)) for p in everything} == {
        str(p.relative_to(root)): oct(expected) for p in everything
    }


def test_the_log_names_each_mask_by_its_final_name_and_no_temporary_file(outputs):
    for step, result in outputs["logs"].items():
        assert ".tmp-" not in result.stdout + result.stderr, step
    log = outputs["logs"]["inference"].stdout
    for mask in sorted(outputs["masks"].glob("*.nii.gz")):
        assert f"wrote {mask}" in log


def test_without_proc_the_umask_is_read_by_setting_it_and_put_back(umask, monkeypatch):
    """Where ``/proc/self/status`` has no umask (not Linux, or before 4.7), POSIX's set-and-restore is the way."""
    from scripts.common import durable_write

    def no_proc(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "/proc/self/status")

    monkeypatch.setattr(durable_write, "open", no_proc, raising=False)
    for value in UMASKS:
        umask(value)
        assert durable_write.current_umask() == value and os.umask(value) == value
