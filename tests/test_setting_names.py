"""Settings checked by name: a mistyped override is refused with the nearest names, --help lists the settings."""

from __future__ import annotations

import pytest

from scripts.config.setting_names import check_names, help_text, unknown_setting
from scripts.tools.launch import build_workflow
from tests.conftest import EVALUATE_CONFIG, INFERENCE_CONFIG, TRAIN_CONFIG, cli_args, run_bundle


def refusal(result) -> str:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stderr.strip().splitlines()[-1]


def test_a_misspelled_setting_stops_training_before_any_work(tmp_path, dataset):
    args = ["--config_file", TRAIN_CONFIG, *cli_args({"bundle_root": tmp_path, "dataset_dir": dataset})]
    line = refusal(run_bundle([*args, "--epoch", "1"]))
    assert line == "--epoch: no such setting; did you mean --epochs?"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "models").exists()
    line = refusal(run_bundle([*args, "--learning-rate", "1e-3"]))  # Fire reads it as learning_rate
    assert line.startswith("--learning_rate: no such setting; did you mean --lr")


def test_evaluation_and_nested_keys_are_checked(tmp_path, dataset):
    files = f"['{TRAIN_CONFIG}','{EVALUATE_CONFIG}']"
    args = ["--config_file", files, "--bundle_root", str(tmp_path), "--dataset_dir", str(dataset)]
    assert refusal(run_bundle([*args, "--eval_splitt", "validation"])).endswith("did you mean --eval_split?")
    line = refusal(run_bundle([*args, "--validate#evaluator#val_handler", "[]"]))
    assert line == "--validate#evaluator#val_handler: no such setting; did you mean --validate#evaluator#val_handlers?"


def test_help_lists_the_settings_with_defaults_and_descriptions(tmp_path):
    result = run_bundle(["--config_file", INFERENCE_CONFIG, "--bundle_root", str(tmp_path), "--help"])
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    index = lines.index("  --overwrite false")
    assert lines[index + 1].strip().startswith("predict scans whose mask is already in output_dir again")
    assert any(line.startswith("  --ckpt_path ") for line in lines)
    assert not (tmp_path / "predictions").exists()  # nothing predicted


def test_names_the_runner_and_its_tracking_take_are_accepted():
    config = {"epochs": 2, "train": {"trainer": {"_target_": "SupervisedTrainer", "max_epochs": 2}}}
    for name in ("meta_file", "logging_file", "tracking", "run_id", "_meta_#version", "epochs"):
        assert unknown_setting(name, config) is None
    assert unknown_setting("train#trainer#epoch_length", config) is None  # a SupervisedTrainer argument
    assert unknown_setting("train#trainer#max_epoch", config).endswith("did you mean --train#trainer#max_epochs?")
    assert unknown_setting("tracking_uri", config) is not None
    assert unknown_setting("tracking_uri", config, {"tracking_uri"}) is None


def test_tools_refuse_unknown_overrides_before_any_work(tmp_path, dataset, capsys):
    with pytest.raises(SystemExit) as stopped:
        build_workflow({"bundle_root": str(tmp_path), "dataset_dir": str(dataset), "epoch": 1})
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == "--epoch: no such setting; did you mean --epochs?"

    from scripts.tools import cross_validate

    with pytest.raises(SystemExit) as stopped:
        cross_validate.main(["--dataset_dir", str(dataset), "--cv_dir", str(tmp_path / "cv"), "--batchsize", "2"])
    assert stopped.value.code == 2
    assert "did you mean --batch_size?" in capsys.readouterr().err
    assert not (tmp_path / "cv" / "fold_0").exists()


def test_a_tool_flag_is_not_abbreviated(tmp_path, capsys):
    from scripts.tools import prepare_example_data

    with pytest.raises(SystemExit) as stopped:
        prepare_example_data.main(["--output_dir", str(tmp_path / "x"), "--num_case", "3"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.endswith("did you mean --num_cases?"), err
    assert not (tmp_path / "x").exists()


def test_check_names_and_help_read_layered_files():
    files = [TRAIN_CONFIG, TRAIN_CONFIG.replace("train.json", "train_3d.json")]
    check_names(["patches_per_volume", "epochs"], files)  # patches_per_volume is the 3D file's own
    with pytest.raises(SystemExit):
        check_names(["patches_per_volume"], [TRAIN_CONFIG])
    assert "  --patches_per_volume 2" in help_text(files).splitlines()
