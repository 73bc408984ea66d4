"""A bad configuration is refused with one line per problem, status 1, no traceback, before training starts."""

import json

from monai.bundle import ConfigParser

from scripts.common.paths import MODE_FILES
from scripts.config.config_check import literal_defaults, problems_in
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
    assert "num_workers='two': must be a whole number >= 0, e.g. --num_workers 2" in found  # a rule of its own now
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


# --- every number checked up front (issue 30, item 5) ------------------------------------------------------------
def test_every_numeric_setting_has_a_rule():
    """A numeric setting added to train.json without a range would go unchecked: each has a rule here or its own."""
    from scripts.config.config_check import NUMBER_RULES

    own_rules = {"val_set_size", "spatial_size", "lr", "max_lr", "context_slices", "num_folds", "fold"}
    numeric = {k for k, v in literal_defaults().items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numeric - own_rules <= set(NUMBER_RULES), numeric - own_rules - set(NUMBER_RULES)


def test_each_number_out_of_its_range_is_one_line():
    bad = {
        "num_workers": -3,
        "seed": -1,
        "num_folds": -1,
        "fold": -2,
        "sw_overlap": 1.0,
        "sw_batch_size": 0,
        "slice_batch": 0,
        "dropout_rate": 1.0,
        "foreground_slice_share": 1.5,
        "early_stop_patience": 0,
        "early_stop_min_delta": -0.1,
        "patches_per_volume": 0,
        "max_lr": float("inf"),
        "label_threshold": "high",
    }
    found = problems_in({**GOOD, **bad})
    for key in bad:
        assert len([line for line in found if line.startswith(f"{key}=") or f", {key}=" in line]) == 1, key
    assert "num_workers=-3: must be a whole number >= 0, e.g. --num_workers 2" in found
    assert "sw_overlap=1.0: must be a number in [0, 1), e.g. --sw_overlap 0.25" in found
    assert "seed=-1: must be a whole number in [0, 4294967295], e.g. --seed 42" in found
    assert "fold=-2: must be >= 0, e.g. --fold 0" in found
    assert problems_in({**GOOD, "num_folds": 3, "fold": 3}) == [
        "fold=3: must be 0 .. 2 with --num_folds 3, e.g. --fold 0"
    ]
    assert problems_in({**GOOD, "num_folds": 5, "fold": 4, "num_workers": 0, "label_threshold": "128"}) == []


def test_inference_and_evaluation_check_their_numbers_too(tmp_path):
    """Their settings are not all of training's, so they check the numbers they have; the shipped model."""
    import pytest
    from monai.bundle import ConfigWorkflow

    from tests.conftest import EVALUATE_CONFIG, INFERENCE_CONFIG, LOGGING, METADATA

    for config_file, kind in ((INFERENCE_CONFIG, "infer"), ([TRAIN_CONFIG, EVALUATE_CONFIG], "eval")):
        workflow = ConfigWorkflow(
            config_file=config_file,
            meta_file=METADATA,
            logging_file=LOGGING,
            workflow_type=kind,
            bundle_root=str(BUNDLE),
            output_dir=str(tmp_path / "out"),
            num_workers=-3,
            sw_overlap=2,
        )
        with pytest.raises(SystemExit) as refused:
            workflow.initialize()
        assert str(refused.value) == (
            "configuration error: num_workers=-3: must be a whole number >= 0, e.g. --num_workers 2\n"
            "  sw_overlap=2: must be a number in [0, 1), e.g. --sw_overlap 0.25"
        ), config_file
    assert not (tmp_path / "out").exists()


def test_a_negative_num_workers_is_refused_before_the_data_check(tmp_path, dataset):
    log = refused(tmp_path, dataset, num_workers=-3)
    assert "configuration error: num_workers=-3: must be a whole number >= 0, e.g. --num_workers 2" in log
    assert "case(s) checked" not in log and "DataLoader" not in log


def test_a_split_that_leaves_one_volume_to_train_on_is_refused(tmp_path, dataset):
    """``--val_set_size 0.99`` of 5 volumes held out 4 and trained on 1, without a word."""
    log = refused(tmp_path, dataset, val_set_size=0.99)
    assert (
        "configuration error: val_set_size=0.99 holds out 4 of 5 labelled volume(s), leaving 1 to train on; training "
        "needs at least 2: lower --val_set_size (or --num_folds) or add labelled volumes"
    ) in log
    assert "5 case(s) checked: 0 error(s)" in log  # the data was fine
