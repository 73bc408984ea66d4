"""Ray Tune search (scripts/tools/tune.py): two real trials of one epoch on tiny data, then the best overrides re-run
through ``monai.bundle run --args_file``. The search itself needs Ray (requirements-tune.txt, which requirements-dev.txt
includes so CI runs it); where Ray is missing that test is skipped, the checks of the command line still run."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from tests.conftest import (
    FAST,
    ONE_THREAD_ENV,
    TRAIN_CONFIG,
    checkpoint_dir,
    cli_args,
    run_bundle,
    run_module,
    write_dataset,
)

SEARCHED = ("lr", "max_lr", "loss_function", "augmentations", "dropout_rate")
METRICS = ("training_loss", "validation_loss", "mean_dice", "epoch")


def test_two_trials_and_best_json_reruns(tmp_path):
    pytest.importorskip("ray.tune", reason="Ray Tune is optional: pip install -r requirements-tune.txt")
    data = write_dataset(tmp_path / "data", channel_suffix="_0000")
    out = tmp_path / "tune_output_folder_with_a_long_name_so_ray_temp_goes_through_a_short_link"
    small = {k: v for k, v in FAST.items() if k != "epochs"}
    result = run_module(
        [
            "scripts.tools.tune",
            "--num_samples",
            "2",
            "--max_epochs",
            "1",
            "--dataset_dir",
            str(data),
            "--output_dir",
            str(out),
            "--num_cpus",
            "2",
            "--cpus_per_trial",
            "1",
            "--gpus_per_trial",
            "0",
            *cli_args(small),
        ],
        timeout=400,
        env=ONE_THREAD_ENV,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    # the table of trials printed at the end, and the same rows in trials.csv
    table = result.stdout[result.stdout.index("Trials (last reported epoch") :]
    header = table.splitlines()[1].split()
    assert set(METRICS) <= set(header) and set(SEARCHED) <= set(header)
    with open(out / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and all(row["status"] == "OK" and row["epoch"] == "1" for row in rows)
    assert all(math.isfinite(float(row[m])) for row in rows for m in METRICS)

    best = json.loads((out / "best.json").read_text())
    assert set(SEARCHED) <= set(best)
    assert 1e-5 <= best["lr"] <= 1e-3 and 1e-3 <= best["max_lr"] <= 1e-2 and 0 <= best["dropout_rate"] <= 0.6
    assert best["loss_function"] in ("dice", "cross_entropy", "combination") and isinstance(best["augmentations"], bool)
    assert best["dataset_dir"] == str(data) and best["epochs"] == 1 and best["spatial_size"] == FAST["spatial_size"]
    best_row = min(rows, key=lambda row: float(row["validation_loss"]))
    assert math.isclose(float(best_row["lr"]), best["lr"])

    # each trial trained in its own folder; Ray's files stayed inside the output folder
    trials = sorted((out / "trials").glob("trial_*"))
    assert len(trials) == 2 and all((t / "runs" / "SMALabeller").is_dir() for t in trials)
    assert all(list(t.glob("checkpoint_*/last.pth")) for t in trials)
    assert list((out / "ray_tmp").glob("session_*/logs"))

    rerun = tmp_path / "rerun"
    again = run_bundle(
        ["--config_file", TRAIN_CONFIG, "--args_file", str(out / "best.json"), "--bundle_root", str(rerun)],
        env=ONE_THREAD_ENV,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert (rerun / "models" / "model.pt").is_file()
    config = torch.load(checkpoint_dir(rerun / "runs") / "last.pth", weights_only=True)["config"]
    assert {k: config[k] for k in SEARCHED} == {k: best[k] for k in SEARCHED}


def test_search_keys_cannot_be_overridden():
    from scripts.tools.tune import parse_args

    with pytest.raises(SystemExit) as stopped:
        parse_args(["--num_samples", "2", "--lr", "1e-3"])
    assert stopped.value.code == 2
    args, overrides = parse_args(["--num_samples", "3", "--spatial_size", "64", "--binarize_labels", "true"])
    assert args.num_samples == 3 and overrides == {"spatial_size": 64, "binarize_labels": "true"}


def test_long_output_dir_reaches_ray_through_a_short_link(tmp_path):
    from scripts.tools.tune import MAX_RAY_TEMP_DIR, RayTempDir

    out = tmp_path / ("x" * 80)
    with RayTempDir(out) as temp_dir:
        assert len(temp_dir) <= MAX_RAY_TEMP_DIR
        Path(temp_dir, "probe").write_text("ok")
    assert (out / "ray_tmp" / "probe").read_text() == "ok"
    assert not Path(temp_dir).exists()


def test_without_ray_the_search_says_how_to_install_it(monkeypatch):
    import sys

    from scripts.tools import tune

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(SystemExit, match="requirements-tune.txt"):
        tune.main(["--num_samples", "1"])


def test_trials_asking_for_more_than_ray_has_are_refused():
    from argparse import Namespace

    from scripts.tools.tune import check_resources

    check_resources({"CPU": 2.0}, Namespace(cpus_per_trial=1, gpus_per_trial=0))
    with pytest.raises(SystemExit, match="--gpus_per_trial 1: Ray has 0 GPUs"):
        check_resources({"CPU": 2.0}, Namespace(cpus_per_trial=1, gpus_per_trial=1))
    with pytest.raises(SystemExit, match="--cpus_per_trial 4"):
        check_resources({"CPU": 2.0, "GPU": 1.0}, Namespace(cpus_per_trial=4, gpus_per_trial=1))
