"""A bad configuration is refused with one line per problem, status 1, no traceback, before training starts."""

import json

from monai.bundle import ConfigParser

from scripts.config.config_check import MODE_FILES, literal_defaults, problems_in
from tests.conftest import BUNDLE, FAST, TRAIN_CONFIG, cli_args, run_bundle

GOOD = {
    "loss_function": "dice",
    "unet_dimensions": "2D",
    "val_set_size": 0.2,
    "epochs": 2,
    "batch_size": 1,
    "slices_per_volume": 4,
    "spatial_size": 32,
    "lr": 1e-4,
    "max_lr": 1e-3,
    "augmentations": "false",
}


def test_good_settings_pass():
    assert problems_in(GOOD) == []


def test_each_bad_setting_is_named():
    bad = {
        "loss_function": "focal",
        "unet_dimensions": "4D",
        "val_set_size": 1.0,
        "epochs": 0,
        "batch_size": -2,
        "spatial_size": 100,
        "lr": 1e-2,
        "max_lr": 1e-3,
        "augmentations": "maybe",
        "cache": "ram",
    }
    found = problems_in({**GOOD, **bad})
    for key in bad:
        assert any(line.startswith(f"{key}=") or f" {key}=" in line for line in found), key


def test_every_setting_is_checked_and_recorded_from_run_config():
    """run_config is the one list: what the checks see, what the checkpoints, TensorBoard and MLflow record."""
    for name in dict.fromkeys(MODE_FILES.values()):
        parser = ConfigParser()
        parser.read_config(
            [str(TRAIN_CONFIG), str(BUNDLE / name)] if name != "configs/train.json" else str(TRAIN_CONFIG)
        )
        raw = json.loads((BUNDLE / name).read_text())
        settings = [k for k in raw if k in literal_defaults()]
        missing = [k for k in settings if k not in parser["run_config"]]
        assert not missing, f"{name}: settings not in run_config: {missing}"
    assert {"num_workers", "slice_batch", "verify_data", "dataset_dir", "model_path"} <= set(parser["run_config"])


def test_a_setting_without_its_own_rule_is_checked_against_its_default():
    found = problems_in({**GOOD, "num_workers": "two", "inference_planes": "axial", "sw_overlap": "half"})
    assert "num_workers='two': must be a whole number, like the default --num_workers 2" in found
    assert any(line.startswith("inference_planes='axial': must be a list") for line in found)
    assert any(line.startswith("sw_overlap='half': must be a number") for line in found)
    assert problems_in({**GOOD, "num_workers": 0, "sw_overlap": 0.5, "comment": 7}) == []


def refused(tmp_path, dataset_dir, **overrides):
    args = ["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), "--dataset_dir", str(dataset_dir)]
    result = run_bundle([*args, *cli_args({**FAST, **overrides})])
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[-2000:]
    assert "Traceback" not in log
    assert not (tmp_path / "models" / "model.pt").exists()
    assert "Engine run" not in log  # no training started
    return log


def test_bad_values_on_the_command_line(tmp_path, dataset):
    log = refused(tmp_path, dataset, loss_function="focal", val_set_size=1.5, epochs=0, cache="ram", slice_batch="all")
    assert "slice_batch='all': must be a whole number" in log
    assert "loss_function='focal'" in log and "val_set_size=1.5" in log and "epochs=0" in log
    assert "cache='ram': use one of disk, memory, none" in log


def test_missing_dataset_folder(tmp_path):
    log = refused(tmp_path, tmp_path / "nowhere")
    assert f"{tmp_path / 'nowhere' / 'imagesTr'}: folder not found" in log


def test_empty_dataset_folder(tmp_path):
    (tmp_path / "empty" / "imagesTr").mkdir(parents=True)
    (tmp_path / "empty" / "labelsTr").mkdir()
    log = refused(tmp_path, tmp_path / "empty")
    assert "0 labelled case(s)" in log


def test_unwritable_cache_dir_is_named(tmp_path):
    import re

    import pytest

    from scripts.config.config_check import check_settings

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    settings = {**GOOD, "cache": "disk", "cache_dir": str(blocker / "cache")}
    with pytest.raises(SystemExit, match=re.escape(f"cache_dir={blocker / 'cache'}: cannot write there")):
        check_settings(settings, str(tmp_path / "runs"))
    check_settings({**settings, "cache": "none"}, str(tmp_path / "runs"))  # no disk cache, no check


def test_unwritable_output_dir(tmp_path, dataset):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    log = refused(tmp_path, dataset, output_dir=blocker / "runs")
    assert f"output_dir={blocker / 'runs'}: cannot write there" in log


def test_training_planes_and_iterations_per_epoch_are_checked():
    assert problems_in({**GOOD, "training_planes": ["axial", "coronal", "sagittal"], "iterations_per_epoch": 50}) == []
    found = problems_in({**GOOD, "training_planes": ["axial", "oblique"], "iterations_per_epoch": 0})
    assert any(line.startswith("training_planes=['axial', 'oblique']") for line in found)
    assert any(line.startswith("iterations_per_epoch=0") for line in found)
    assert any(line.startswith("training_planes='axial'") for line in problems_in({**GOOD, "training_planes": "axial"}))
