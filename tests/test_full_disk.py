"""A disk that fills mid-run (issue 30, item 2): training, inference and evaluation end with one line naming the
file, its folder and what is kept, without a traceback, and nothing written before is damaged. Real subprocesses,
the full disk injected (tests/full_disk.py; a tmpfs needs privileges)."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Engine

from scripts.common.durable_write import WriteError
from scripts.handlers import best_model_export
from scripts.handlers.best_model_export import ExportBestModel
from tests.conftest import (
    EVALUATE_CONFIG,
    FAST,
    INFERENCE_CONFIG,
    ONE_THREAD_ENV,
    TRAIN_CONFIG,
    TRAINED,
    affine_for,
    blob_volume,
    bundle_run,
    checkpoint_dir,
    cli_args,
    run_bundle,
    run_module,
    write_dataset,
)
from tests.full_disk import full_disk_env

NO_SPACE = "No space left on device"


def last_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def assert_no_traceback(result) -> None:
    log = result.stdout + result.stderr
    assert "Traceback" not in log and "inline_container" not in log and "applying transform" not in log, log[-3000:]


def train(root: Path, full: Path, files_before: int, **settings):
    data = write_dataset(root / "data")
    args = ["--config_file", TRAIN_CONFIG, "--bundle_root", str(root), "--dataset_dir", str(data)]
    overrides = {**FAST, "cache": "none", **settings}
    return run_bundle([*args, *cli_args(overrides)], env={**ONE_THREAD_ENV, **full_disk_env(root, full, files_before)})


def test_a_full_disk_while_training_writes_a_checkpoint_is_one_line_naming_the_best_weights(tmp_path):
    """Epoch 1 writes best.pth and last.pth; then the checkpoints' disk is full."""
    result = train(tmp_path, tmp_path / "runs", 2, epochs=3)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert_no_traceback(result)
    folder = checkpoint_dir(tmp_path / "runs")
    assert re.fullmatch(
        rf"run stopped at epoch 2: cannot write (best|last)\.pth in {re.escape(str(folder))}: {NO_SPACE}; free space "
        rf"in {re.escape(str(folder))}; the checkpoints written before are intact \(--resume true goes on from the "
        rf"last\); the best weights so far are in {re.escape(str(folder / 'best.pth'))} \(--ckpt_path for inference\)",
        last_line(result),
    ), last_line(result)
    assert sorted(p.name for p in folder.iterdir()) == ["best.pth", "last.pth"]  # no partial file beside them
    for name in ("best.pth", "last.pth"):
        assert torch.load(folder / name, weights_only=True)["epoch"] == 1
    assert not (tmp_path / "models").exists()


def test_a_full_disk_when_training_writes_model_pt_names_best_pth_and_leaves_no_half_model(tmp_path):
    """The models folder takes model.json, then not model.pt: the line names the best checkpoint, and no model.json
    is left describing weights that are not there."""
    result = train(tmp_path, tmp_path / "models", 1, epochs=1)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert_no_traceback(result)
    models, best = tmp_path / "models", checkpoint_dir(tmp_path / "runs") / "best.pth"
    assert last_line(result) == (
        f"run stopped at epoch 1: cannot write model.pt in {models}: {NO_SPACE}; free space in {models}; the "
        "checkpoints written before are intact (--resume true goes on from the last); the best weights so far are in "
        f"{best} (--ckpt_path for inference)"
    )
    assert sorted(p.name for p in models.iterdir()) == []
    assert torch.load(best, weights_only=True)["epoch"] == 1


def test_a_model_that_cannot_be_written_puts_the_former_settings_back(tmp_path, monkeypatch):
    """Without this, model.json would describe the new weights while model.pt still held the former ones."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "model.json").write_text('{"spatial_size": 64}\n')
    torch.save({"w": torch.zeros(1)}, models / "model.pt")
    real = best_model_export.save_durably

    def weights_disk_full(obj, path, *args, **kwargs):
        if Path(path).name == "model.pt":
            raise WriteError(errno.ENOSPC, NO_SPACE, str(path))
        return real(obj, path, *args, **kwargs)

    monkeypatch.setattr(best_model_export, "save_durably", weights_disk_full)
    export = ExportBestModel(torch.nn.Linear(1, 1), str(tmp_path / "best.pth"), str(models / "model.pt"), {"a": 1})
    with pytest.raises(WriteError):
        export(Engine(lambda engine, batch: None))
    assert (models / "model.json").read_text() == '{"spatial_size": 64}\n'
    assert torch.equal(torch.load(models / "model.pt", weights_only=True)["w"], torch.zeros(1))
    assert sorted(p.name for p in models.iterdir()) == ["model.json", "model.pt"]


def test_a_full_disk_while_inference_writes_masks_is_one_line_and_the_same_command_finishes(trained_bundle, tmp_path):
    scans, out = tmp_path / "scans", tmp_path / "masks"
    scans.mkdir()
    for index, case in enumerate("abc"):
        image, _ = blob_volume((36, 40, 16), 800.0, index)
        nib.save(nib.Nifti1Image(image, affine_for((1.1, 0.9, 2.0), (0, 1, 2))), scans / f"{case}_0000.nii.gz")
    command = [
        *bundle_run(INFERENCE_CONFIG),
        *["--bundle_root", str(trained_bundle["root"]), "--dataset_dir", str(scans), "--output_dir", str(out)],
        *cli_args(TRAINED),
    ]
    result = run_module(command, env=full_disk_env(tmp_path, out, 1))  # room for one mask
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert_no_traceback(result)
    assert last_line(result) == (
        f"inference stopped at case 2: cannot write b.nii.gz in {out}: {NO_SPACE}; free space in {out}; the masks "
        "written before are whole and kept: the same command predicts the rest"
    )
    assert sorted(p.name for p in out.iterdir()) == ["a.nii.gz"]  # whole, and nothing partial beside it
    written = (out / "a.nii.gz").stat().st_mtime_ns
    assert np.asarray(nib.load(out / "a.nii.gz").dataobj).any()
    # once there is room, the same command predicts the rest and keeps the mask it has
    result = run_module(command)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{out / 'a.nii.gz'}: exists, not predicted again" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["a.nii.gz", "b.nii.gz", "c.nii.gz"]
    assert (out / "a.nii.gz").stat().st_mtime_ns == written


def test_a_full_disk_while_evaluation_writes_its_report_is_one_line_and_the_former_report_stays(
    trained_bundle, tmp_path
):
    report = tmp_path / "eval"
    report.mkdir()
    (report / "metrics.csv").write_bytes(b"case,dice\r\nformer,0.5\r\n")
    result = run_module(
        [
            *bundle_run(f"['{TRAIN_CONFIG}','{EVALUATE_CONFIG}']"),
            *["--bundle_root", str(trained_bundle["root"]), "--dataset_dir", str(trained_bundle["data"])],
            *["--output_dir", str(tmp_path / "runs"), "--eval_output_dir", str(report)],
            *cli_args(TRAINED),
        ],
        env=full_disk_env(tmp_path, report, 0),
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert_no_traceback(result)
    assert last_line(result) == (
        f"evaluation stopped after its 1 case(s): cannot write metrics.csv in {report}: {NO_SPACE}; free space in "
        f"{report}; a former report there is intact; run the evaluation again"
    )
    assert sorted(p.name for p in report.iterdir()) == ["metrics.csv"]
    assert (report / "metrics.csv").read_bytes() == b"case,dice\r\nformer,0.5\r\n"


def test_only_a_failed_write_becomes_one_line_and_a_bug_keeps_its_traceback(caplog):
    """MONAI wraps a saver's error in ``RuntimeError: applying transform <Compose ...>``; the line names the file
    inside it, and ignite's own line about the wrapper is left out. Any other error is raised as it was."""
    from scripts.handlers.clean_exit import ExitOnOSError

    def save_fails(engine, batch):
        if engine.state.iteration == 2:
            full = WriteError(errno.ENOSPC, NO_SPACE, "/out/b.nii.gz")
            raise RuntimeError("applying transform <monai.transforms.compose.Compose object>") from full

    engine = Engine(save_fails)
    ExitOnOSError(run="inference", afterwards="the masks written before are kept").attach(engine)
    with pytest.raises(SystemExit) as stopped:
        engine.run([1, 2, 3])
    assert str(stopped.value) == (
        f"inference stopped at case 2: cannot write b.nii.gz in /out: {NO_SPACE}; free space in /out; the masks "
        "written before are kept"
    )
    assert not [r for r in caplog.records if "applying transform" in r.getMessage()]
    bug = Engine(lambda engine, batch: 1 / 0)
    ExitOnOSError().attach(bug)
    with pytest.raises(ZeroDivisionError):
        bug.run([1])
