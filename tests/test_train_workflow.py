"""Real training runs of configs/train.json: in-process through ConfigWorkflow and through the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nibabel as nib
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from scripts.handlers.early_stopping import EarlyStoppingOnValidation
from tests.conftest import FAST, LOGGING, METADATA, TRAIN_CONFIG, cli_args, run_bundle


def scalar_tags(log_dir: Path) -> dict[str, list[float]]:
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def only(paths) -> Path:
    paths = list(paths)
    assert len(paths) == 1, paths
    return paths[0]


def test_one_epoch_on_mixed_volumes(dataset, tmp_path):
    bundle_root = tmp_path / "bundle"
    workflow = ConfigWorkflow(
        config_file=TRAIN_CONFIG,
        meta_file=METADATA,
        logging_file=LOGGING,
        workflow_type="train",
        bundle_root=str(bundle_root),
        dataset_dir=str(dataset),
        **FAST,
    )
    workflow.initialize()
    assert not workflow.check_properties()
    workflow.run()
    workflow.finalize()

    trainer, evaluator = workflow.trainer, workflow.evaluator
    assert trainer.state.epoch == 1
    # the handler list's early stopping is the one the checkpoints save and the hparams log
    early_stopping = workflow.parser.get_parsed_content("early_stopping")
    assert isinstance(early_stopping, EarlyStoppingOnValidation)
    assert workflow.parser.get_parsed_content("training_state").early_stopping is early_stopping
    assert math.isfinite(trainer.state.metrics["train_loss"])
    assert math.isfinite(evaluator.state.metrics["val_loss"])
    assert 0.0 <= evaluator.state.metrics["val_mean_dice"] <= 1.0

    # validation Dice is computed on the label's own voxel grid, not on resized slices
    val_case = workflow.parser.get_parsed_content("split")[1][0]
    label_shape = nib.load(val_case["label"]).shape
    pred = evaluator.state.output[0]["pred"]
    assert tuple(pred.shape[1:]) == label_shape
    assert torch.allclose(pred.affine.double(), torch.as_tensor(nib.load(val_case["label"]).affine))

    run_root = bundle_root / "runs" / "SMALabeller"
    train_log = only(run_root.glob("*-trn_cls-exp"))
    val_log = only(run_root.glob("*-val_cls-exp"))
    stamp = train_log.name.split("-trn_cls-")[0]
    assert (run_root / f"{stamp}-val_cls-exp") == val_log
    train_tags, val_tags = scalar_tags(train_log), scalar_tags(val_log)
    assert {"train_loss_batch", "train_loss", "lr"} <= set(train_tags)
    assert {"val_loss", "val_mean_dice"} <= set(val_tags)
    assert all(math.isfinite(v) for v in train_tags["train_loss_batch"])

    model = workflow.parser.get_parsed_content("network_def", instantiate=True)
    weights = torch.load(bundle_root / "models" / "model.pt", weights_only=True)
    model.load_state_dict(weights)
    # the settings the network expects travel with it: beside model.pt and inside every checkpoint
    settings = json.loads((bundle_root / "models" / "model.json").read_text())
    assert settings["network_args"]["spatial_dims"] == 2 and settings["spatial_size"] == FAST["spatial_size"]
    assert settings.pop("trained_on") == str((dataset / "imagesTr").resolve())  # what a later run may not replace
    assert settings == workflow.parser.get_parsed_content("model_settings")
    for name in ("best.pth", "last.pth"):
        state = torch.load(run_root / stamp / "checkpoints" / name, weights_only=True)
        model.load_state_dict(state["model_state"])
        assert state["model_settings"] == settings


def test_network_uses_dropout_rate_and_batchnorm():
    parser = ConfigParser()
    parser.read_config(TRAIN_CONFIG)
    parser["dropout_rate"] = 0.35
    network = parser.get_parsed_content("network_def")
    dropouts = [m for m in network.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p == 0.35 for m in dropouts)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules())
    assert network(torch.zeros(2, 1, 64, 48)).shape == (2, 1, 64, 48)


def test_cli_overrides_reach_the_run(tmp_path):
    data = tmp_path / "elsewhere"
    from tests.conftest import write_dataset

    write_dataset(data)
    out = tmp_path / "out"
    overrides = {
        **FAST,
        "training_images": data / "imagesTr",
        "training_labels": data / "labelsTr",
        "output_dir": out,
        "batch_size": 1,
        "tb_prefix": "MyTool",
        "comment": "run7",
        "loss_function": "dice",
        "augmentations": "false",
        "dropout_rate": 0.25,
        "lr": 2e-4,
        "max_lr": 2e-3,
        "val_set_size": 0.4,
        "iterations_per_epoch": 3,
        "seed": 7,
        "device": "cpu",  # a string, with amp left on: amp must then simply not apply
    }
    result = run_bundle(["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), *cli_args(overrides)])
    assert result.returncode == 0, result.stderr[-3000:]
    stamp_dir = only(p for p in (out / "MyTool").iterdir() if "-" not in p.name[10:])
    assert only((out / "MyTool").glob("*-trn_cls-run7")).name.startswith(stamp_dir.name)
    state = torch.load(stamp_dir / "checkpoints" / "last.pth", weights_only=True)
    config = state["config"]
    assert config["loss_function"] == "dice" and config["dropout_rate"] == 0.25 and config["seed"] == 7
    assert config["val_set_size"] == 0.4 and config["batch_size"] == 1
    # 5 volumes, 40% for validation -> 3 training volumes; an epoch is iterations_per_epoch steps whatever their number
    assert state["global_step"] == 3 and config["iterations_per_epoch"] == 3
    assert state["scheduler_state"]["total_steps"] == 3
    assert state["optimizer_state"]["param_groups"][0]["initial_lr"] == pytest.approx(2e-4)
    assert not (tmp_path / "demo_data").exists()  # folders given one by one: no demo data written
    assert (tmp_path / "models" / "model.pt").is_file()


def test_demo_dataset_is_written_and_trained_on_when_no_data_given(tmp_path):
    result = run_bundle(["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), *cli_args(FAST)])
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert log.count("No dataset given: writing 10 synthetic demo volumes") == 1
    assert len(list((tmp_path / "demo_data" / "labelsTr").glob("*.nii.gz"))) == 10
    assert "val_mean_dice" in log
    assert (tmp_path / "models" / "model.pt").is_file()
    # second run reuses the demo data rather than rewriting it
    again = run_bundle(["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), *cli_args(FAST)])
    assert again.returncode == 0 and "No dataset given" not in again.stdout + again.stderr
