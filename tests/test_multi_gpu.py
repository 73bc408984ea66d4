"""torchrun with 2 processes (gloo on CPU): only rank 0 writes, both ranks stop early at the same epoch and
end with identical weights."""

import json
import os
import re
import subprocess
import sys

import torch

from tests.conftest import BUNDLE, CLASS_VALUES, FAST, VOLUMES, bundle_run, cli_args, write_class_dataset, write_dataset

MULTI = "['configs/train.json','configs/multi_gpu_train.json'"


def torchrun(tmp_path, data, extra_configs=(), **overrides):
    configs = MULTI + "".join(f",'{c}'" for c in extra_configs) + "]"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        *bundle_run(configs),
        "--bundle_root",
        str(tmp_path),
        "--dataset_dir",
        str(data),
        *cli_args({**FAST, **overrides}),
    ]
    env = {**os.environ, "PYTHONPATH": str(BUNDLE), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=BUNDLE, capture_output=True, text=True, timeout=600, env=env)


def test_two_processes_on_cpu(tmp_path):
    data = write_dataset(tmp_path / "data", volumes=VOLUMES + VOLUMES[:1])  # 6 volumes: 4 train, 2 validation
    dump = tmp_path / "dump_weights.json"
    dump.write_text(
        json.dumps(
            {
                "run": [
                    "$@train#trainer.run()",
                    "$torch.save(@network.module.state_dict(),"
                    " os.path.join(@bundle_root, f'rank{torch.distributed.get_rank()}.pt'))",
                ]
            }
        )
    )
    # nothing may land in the bundle's own runs/ (a demo run before the tests may have put files there)
    events_before = set((BUNDLE / "runs").rglob("events.out.tfevents.*")) if (BUNDLE / "runs").exists() else set()
    # no validation can beat min_delta=100, so with patience 1 early stopping fires after epoch 2 of 3
    result = torchrun(
        tmp_path,
        data,
        extra_configs=[str(dump)],
        val_set_size=0.34,
        epochs=3,
        early_stop_patience=1,
        early_stop_min_delta=100,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]

    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key

    runs = tmp_path / "runs" / "SMALabeller"
    assert len([p for p in runs.iterdir() if (p / "checkpoints").is_dir()]) == 1
    assert len(list(runs.glob("*-trn_cls-exp"))) == 1 and len(list(runs.glob("*-val_cls-exp"))) == 1
    assert len(list(runs.glob("*-trn_cls-exp/events.out.tfevents.*"))) == 1
    assert len(list(runs.glob("*-val_cls-exp/events.out.tfevents.*"))) == 1
    assert (
        set((BUNDLE / "runs").rglob("events.out.tfevents.*")) if (BUNDLE / "runs").exists() else set()
    ) == events_before
    checkpoint = next(runs.glob("*/checkpoints/last.pth"))
    last = torch.load(checkpoint, weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == 2 * FAST["iterations_per_epoch"]  # per rank, whatever the data
    assert log.count("Epoch[1] Metrics -- val_loss") == 1  # rank 0 alone logs
    assert log.count("Early stopping at epoch 2") == 1


def test_two_processes_train_three_classes_and_score_each_over_both_ranks(tmp_path):
    data = write_class_dataset(tmp_path / "data", volumes=VOLUMES + VOLUMES[:1])  # 2 validation volumes, 1 a rank
    result = torchrun(tmp_path, data, val_set_size=0.34, epochs=2, balance_classes="true")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    model = json.loads((tmp_path / "models" / "model.json").read_text())
    assert model["label_classes"] == CLASS_VALUES and model["network_args"]["out_channels"] == 3
    lines = [line for line in log.splitlines() if "Epoch[2] Metrics -- val_" in line]
    assert len(lines) == 1, log[-4000:]  # rank 0 alone logs
    metrics = {k: float(v) for k, v in re.findall(r"(val_\w+): ([-\d.]+)", lines[0])}
    # each class's Dice comes from the cases of both ranks, as the mean does: the mean is their average
    assert abs(metrics["val_mean_dice"] - (metrics["val_dice_shell"] + metrics["val_dice_core"]) / 2) < 2e-4, metrics


def test_too_few_validation_volumes_for_the_ranks(tmp_path):
    result = torchrun(tmp_path, write_dataset(tmp_path / "data"), val_set_size=0.2)
    assert result.returncode != 0
    assert "1 validation volume(s) for 2 processes" in result.stdout + result.stderr


def test_two_processes_resume_from_rank_0s_checkpoint_and_a_finished_run_trains_nothing(tmp_path):
    data = write_dataset(tmp_path / "data", volumes=VOLUMES + VOLUMES[:1])
    settings = {"val_set_size": 0.34, "epochs": 2, "ckpt_period": 1}
    first = torchrun(tmp_path, data, **settings)
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    last = next((tmp_path / "runs" / "SMALabeller").glob("*/checkpoints/last.pth"))
    written = last.stat().st_mtime_ns
    again = torchrun(tmp_path, data, resume="true", **settings)
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-4000:]
    assert log.count("the run has already finished (all 2 epochs done); nothing to train") == 1  # rank 0 logs
    assert last.stat().st_mtime_ns == written and "Traceback" not in log
