"""The original app's interface (scripts/tools/app.py): its command line and SMALabellerApp.do2dTraining, both real runs
of the bundle's training workflow."""

from __future__ import annotations

import math

import pytest
import torch

from tests.conftest import FAST, checkpoint_dir, cli_args, run_module, write_dataset

HYPER = {"lr": 2e-4, "max_lr": 3e-3, "loss_function": "dice", "augmentations": False, "dropout_rate": 0.25}


def test_cli_with_the_original_flags(tmp_path):
    data = write_dataset(tmp_path / "data")
    root = tmp_path / "bundle"
    result = run_module(
        [
            "scripts.tools.app",
            "--unet_dimensions",
            "2D",
            "--num_workers",
            "0",
            "--batch_size",
            "2",
            "--epochs",
            "1",
            "--training_images",
            str(data / "imagesTr"),
            "--training_labels",
            str(data / "labelsTr"),
            "--tb_prefix",
            "MyPrefix",
            "--val_set_size",
            "0.2",
            # bundle overrides the original app did not have: tiny slices, and where the run writes
            *cli_args({k: v for k, v in FAST.items() if k not in ("epochs", "batch_size", "num_workers")}),
            "--bundle_root",
            str(root),
            "cconelea",
        ],
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    run_root = root / "runs" / "MyPrefix"
    train_logs = list(run_root.glob("*-trn_cls-cconelea"))
    val_logs = list(run_root.glob("*-val_cls-cconelea"))
    assert len(train_logs) == 1 and len(val_logs) == 1, sorted(p.name for p in run_root.iterdir())
    assert (root / "models" / "model.pt").is_file()
    assert (checkpoint_dir(root / "runs", "MyPrefix") / "last.pth").is_file()
    # the two folders were given: no demo data set is written
    assert not (root / "demo_data").exists()


def test_cli_refuses_an_unknown_unet_dimensions_in_one_line():
    from scripts.tools.app import main

    # SystemExit with a message: Python prints that one line to stderr and exits with status 1, before any work
    with pytest.raises(SystemExit) as stopped:
        main(["--unet_dimensions", "4D", "--epochs", "1", "x"])
    message = str(stopped.value)
    assert message.startswith("configuration error: unet_dimensions='4D': ") and "2D" in message
    assert "\n" not in message


def test_modes_other_than_2d_layer_their_config_file():
    from scripts.common.paths import MODE_FILES, TRAIN_CONFIG
    from scripts.tools.launch import config_files

    assert config_files(None) == config_files("2D") == [str(TRAIN_CONFIG)]
    for mode, layered in MODE_FILES.items():
        if mode != "2D" and (TRAIN_CONFIG.parents[1] / layered).is_file():
            assert config_files(mode) == [str(TRAIN_CONFIG), str(TRAIN_CONFIG.parents[1] / layered)]


def test_do2dtraining_uses_the_config(tmp_path, one_torch_thread):
    from scripts.tools.app import SMALabellerApp

    data = write_dataset(tmp_path / "data")
    root = tmp_path / "bundle"
    args = {**FAST, "dataset_dir": str(data), "bundle_root": str(root), "comment": "inproc", "unet_dimensions": "2D"}
    result = SMALabellerApp(args=args).do2dTraining(HYPER, ray_tune=False)

    assert result["epoch"] == 1
    assert all(math.isfinite(result[k]) for k in ("training_loss", "validation_loss", "mean_dice"))
    assert result["model_path"] == str(root / "models" / "model.pt")
    saved = torch.load(checkpoint_dir(root / "runs") / "last.pth", weights_only=True)["config"]
    assert {key: saved[key] for key in HYPER} == HYPER
    assert list((root / "runs" / "SMALabeller").glob("*-trn_cls-inproc"))


def test_do2dtraining_rejects_unknown_config_keys():
    from scripts.tools.app import SMALabellerApp

    with pytest.raises(ValueError, match="learning_rate"):
        SMALabellerApp({}).do2dTraining({"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="val_interval"):
        SMALabellerApp({"val_interval": 2}).overrides({}, ray_tune=True)
    with pytest.raises(SystemExit, match="unet_dimensions='4D'"):
        SMALabellerApp({"unet_dimensions": "4D"})


def test_overrides_are_read_like_the_bundle_cli():
    from scripts.tools.app import SMALabellerApp

    app = SMALabellerApp.from_cli(
        [
            "--epochs",
            "3",
            "--spatial_size",
            "64",
            "--lr=3e-4",
            "--augmentations",
            "false",
            "--training_images",
            "/d/imagesTr",
            "--training_labels",
            "/d/labelsTr",
            "note",
        ]
    )
    assert app.args == {
        "epochs": 3,
        "spatial_size": 64,
        "lr": 3e-4,
        "augmentations": "false",
        "training_images": "/d/imagesTr",
        "training_labels": "/d/labelsTr",
        "comment": "note",
    }
    # dataset_dir is recorded as the folder holding both, instead of defaulting to the demo set
    assert app.overrides({"dropout_rate": 0.0})["dataset_dir"] == "/d"
