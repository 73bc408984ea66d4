"""Stop a run after 2 of 4 epochs, resume it from the CLI, and get the weights of an uninterrupted run."""

from pathlib import Path

import torch
from ignite.engine import Events

from tests.conftest import FAST, TRAIN_CONFIG, checkpoint_dir, cli_args, make_workflow, run_bundle, write_dataset

# 3 iterations an epoch from 4 training volumes (12 items along 3 planes), loaded by 2 persistent workers: a resumed
# run must draw the same items and random transforms whichever worker loads them
SETTINGS = {
    **FAST,
    "epochs": 4,
    "iterations_per_epoch": 3,
    "num_workers": 2,
    "ckpt_period": 1,
    "ckpt_keep": 2,
    "bn_calibration_batches": 2,
}


def train_until(root: Path, data: Path, stop_after: int | None = None) -> None:
    workflow = make_workflow(root, data, **SETTINGS)
    if stop_after is not None:  # simulates a killed job: stop right after the epoch's checkpoints are written
        workflow.trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after), lambda e: e.terminate())
    workflow.run()
    workflow.finalize()


def test_resumed_run_ends_with_identical_weights(tmp_path):
    data = write_dataset(tmp_path / "data")
    train_until(tmp_path / "full", data)
    train_until(tmp_path / "split", data, stop_after=2)
    assert torch.load(checkpoint_dir(tmp_path / "split" / "runs") / "last.pth", weights_only=True)["epoch"] == 2

    args = ["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path / "split"), "--dataset_dir", str(data)]
    result = run_bundle([*args, *cli_args(SETTINGS), "--resume", "true"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resumed from" in result.stdout and "epoch 2, iteration 6" in result.stdout

    full = torch.load(checkpoint_dir(tmp_path / "full" / "runs") / "last.pth", weights_only=True)
    resumed = torch.load(checkpoint_dir(tmp_path / "split" / "runs") / "last.pth", weights_only=True)
    assert resumed["epoch"] == full["epoch"] == 4 and resumed["global_step"] == full["global_step"] == 12
    for key, tensor in full["model_state"].items():
        assert torch.equal(tensor, resumed["model_state"][key]), key
    assert resumed["scheduler_state"]["last_epoch"] == full["scheduler_state"]["last_epoch"]
    assert resumed["early_stopping_state"] == full["early_stopping_state"]
    # TensorBoard continued in the same folders; the old run's periodic files were adopted (keep 2)
    assert len(list((tmp_path / "split" / "runs" / "SMALabeller").glob("*-trn_cls-exp"))) == 1
    names = sorted(p.name for p in checkpoint_dir(tmp_path / "split" / "runs").glob("periodic_*"))
    assert names == ["periodic_0003.pth", "periodic_0004.pth"]


def test_truncated_last_falls_back_to_newest_periodic(tmp_path):
    data = write_dataset(tmp_path / "data")
    train_until(tmp_path, data, stop_after=2)
    ckpts = checkpoint_dir(tmp_path / "runs")
    last = ckpts / "last.pth"
    last.write_bytes(last.read_bytes()[:1000])

    args = ["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), "--dataset_dir", str(data)]
    result = run_bundle([*args, *cli_args(SETTINGS), "--resume", "true"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{last}: unreadable checkpoint" in result.stdout
    assert f"Resumed from {ckpts / 'periodic_0002.pth'}: epoch 2" in result.stdout
    assert torch.load(last, weights_only=True)["epoch"] == 4


def test_resume_with_nothing_usable_names_the_file(tmp_path):
    data = write_dataset(tmp_path / "data")
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    args = ["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), "--dataset_dir", str(data)]
    result = run_bundle([*args, *cli_args(SETTINGS), "--resume_from", str(broken)])
    assert result.returncode != 0
    assert f"{broken}: unreadable checkpoint" in result.stdout + result.stderr


def test_resume_with_other_epochs_is_refused_clearly(tmp_path):
    data = write_dataset(tmp_path / "data")
    train_until(tmp_path, data, stop_after=1)
    args = ["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), "--dataset_dir", str(data)]
    result = run_bundle([*args, *cli_args({**SETTINGS, "epochs": 6}), "--resume", "true"])
    assert result.returncode == 1
    log = result.stdout + result.stderr
    assert "cannot resume from" in log and "resume with the same --epochs" in log and "Traceback" not in log


def test_resume_with_settings_the_network_was_not_trained_for_is_refused_clearly(tmp_path):
    data = write_dataset(tmp_path / "data")
    train_until(tmp_path, data, stop_after=1)
    args = ["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), "--dataset_dir", str(data)]
    result = run_bundle([*args, *cli_args({**SETTINGS, "intensity_normalisation": "percentile"}), "--resume", "true"])
    assert result.returncode == 1
    log = result.stdout + result.stderr
    assert "cannot resume from" in log and "intensity_normalisation='zscore_foreground'" in log, log[-2000:]
    assert "intensity_normalisation='percentile'" in log and "Traceback" not in log


def test_resuming_a_finished_run_trains_nothing_and_exits_0(tmp_path):
    data = write_dataset(tmp_path / "data")
    train_until(tmp_path, data)
    last = checkpoint_dir(tmp_path / "runs") / "last.pth"
    model = tmp_path / "models" / "model.pt"
    before = (last.stat().st_mtime_ns, model.read_bytes())
    args = ["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), "--dataset_dir", str(data)]
    result = run_bundle([*args, *cli_args(SETTINGS), "--resume", "true"])
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "the run has already finished (all 4 epochs done); nothing to train" in log and "Traceback" not in log
    assert (last.stat().st_mtime_ns, model.read_bytes()) == before


def test_with_last_pth_damaged_and_no_periodic_checkpoint_the_newest_readable_one_is_used(tmp_path):
    data = write_dataset(tmp_path / "data")
    train_until(tmp_path, data, stop_after=2)
    folder = checkpoint_dir(tmp_path / "runs")
    for periodic in folder.glob("periodic_*.pth"):
        periodic.unlink()
    (folder / "last.pth").write_bytes((folder / "last.pth").read_bytes()[:1000])
    best = torch.load(folder / "best.pth", weights_only=True)
    args = ["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), "--dataset_dir", str(data)]
    result = run_bundle([*args, *cli_args(SETTINGS), "--resume", "true"])
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert f"{folder / 'last.pth'}: unreadable checkpoint" in log and "Traceback" not in log
    assert f"Resumed from {folder / 'best.pth'}: epoch {best['epoch']}" in log
    assert torch.load(folder / "last.pth", weights_only=True)["epoch"] == 4


def test_two_runs_started_in_the_same_second_get_two_folders(tmp_path):
    from scripts.persistence.resume import run_stamp

    stamps = {run_stamp(str(tmp_path), "SMALabeller") for _ in range(3)}
    assert len(stamps) == 3 and all((tmp_path / "SMALabeller" / s).is_dir() for s in stamps)


def test_init_from_starts_a_new_run_from_trained_weights_with_a_fresh_schedule(tmp_path):
    import pytest

    data = write_dataset(tmp_path / "data")
    train_until(tmp_path / "first", data)
    model = tmp_path / "first" / "models" / "model.pt"
    weights = torch.load(model, weights_only=True)
    longer = make_workflow(tmp_path / "second", data, **{**SETTINGS, "init_from": str(model)})
    for name, tensor in longer.parser.get_parsed_content("network").state_dict().items():
        assert torch.equal(tensor, weights[name]), name
    assert longer.trainer.state.iteration == 0 and longer.parser.get_parsed_content("lr_scheduler").last_epoch == 0
    assert longer.parser.get_parsed_content("network").training  # back in training mode after loading
    # weights recorded with other settings are refused, before any training
    with pytest.raises(SystemExit, match=r"--spatial_size 48 contradicts the model, trained with spatial_size=32"):
        make_workflow(tmp_path / "third", data, **{**SETTINGS, "spatial_size": 48, "init_from": str(model)})


def test_resume_with_another_loss_or_data_folder_is_refused_unless_asked(tmp_path):
    data = write_dataset(tmp_path / "data")
    train_until(tmp_path, data, stop_after=1)
    args = ["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), "--dataset_dir", str(data)]
    result = run_bundle([*args, *cli_args({**SETTINGS, "loss_function": "dice"}), "--resume", "true"])
    log = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in log, log[-2000:]
    assert "loss_function='combination'" in log and "loss_function='dice'" in log and "--resume_with_changes" in log

    moved = ["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), "--dataset_dir", str(tmp_path / "other")]
    write_dataset(tmp_path / "other")
    result = run_bundle([*moved, *cli_args(SETTINGS), "--resume", "true"])
    assert result.returncode == 1 and "training_images=" in result.stdout + result.stderr
    result = run_bundle([*moved, *cli_args(SETTINGS), "--resume", "true", "--resume_with_changes", "true"])
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    assert "Resumed from" in result.stdout
