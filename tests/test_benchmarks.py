"""Each benchmark runs end to end with ``--smoke`` (tiny sizes) in a real subprocess and writes its JSON.

No timing is asserted here: CI machines are shared and noisy; the numbers come from full runs (benchmarks/README.md).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import BUNDLE


def run_benchmark(name: str, tmp_path, *extra: str) -> dict:
    out = tmp_path / f"{name}.json"
    cmd = [
        sys.executable,
        "-m",
        f"benchmarks.{name}",
        "--smoke",
        "--json",
        str(out),
        "--workdir",
        str(tmp_path / "work"),
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(BUNDLE)}
    proc = subprocess.run(cmd, cwd=BUNDLE, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| " in proc.stdout and str(out) in proc.stdout  # the Markdown table and where the JSON went
    result = json.loads(out.read_text())
    assert result["benchmark"] == name
    assert result["system"]["torch_threads"] >= 1 and result["command"].startswith(f"python -m benchmarks.{name}")
    assert result["targets"] and all(isinstance(v, bool) for v in result["targets"].values())
    return result


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_train_throughput_smoke(tmp_path):
    result = run_benchmark("train_throughput", tmp_path, "--repeats", "2")
    runs = result["runs"]
    # one (c) run per cache mode; the config's default is one of them
    assert set(runs) >= {"a", "b", "c:disk", "c:memory", "c:none", "c:disk_thread", "c:memory_thread"}
    assert result["config_cache_mode"] == "disk"
    for run in runs.values():
        assert positive(run["slices_per_s_median"]) and positive(run["epoch_slices_per_s_median"])
        assert all(positive(v) for v in run["slices_per_s"])
    assert set(result["ratios"]) >= {
        "b/a",
        "c/b:disk",
        "c/b:memory",
        "c/b:none",
        "c/b:disk_thread",
        "c/b:memory_thread",
    }
    assert all(positive(v) for v in result["ratios"].values())
    # paired ratio: the median (of 2 rounds: the mean) of the ratios of the two runs in the same round
    for key, (top, bottom) in {"b/a": ("b", "a"), "c/b:disk": ("c:disk", "b")}.items():
        per_round = [t / b for t, b in zip(runs[top]["slices_per_s"], runs[bottom]["slices_per_s"], strict=True)]
        assert len(per_round) == 2 and result["paired_ratios"][key] == pytest.approx(sum(per_round) / 2, rel=1e-3)
    assert result["best_cache"] in {"disk", "memory", "none", "disk_thread", "memory_thread"}
    assert {"transform", "random", "ms_per_volume"} <= set(result["loader_profile"]["transforms"][0])
    # the disk cache was really written
    assert list((tmp_path / "work" / "cache-disk").glob("*.pt"))


def test_inference_smoke(tmp_path):
    result = run_benchmark("inference", tmp_path)
    assert positive(result["bare_forward_s"]["median"]) and positive(result["bundle_s"]["median"])
    assert positive(result["ratio"])
    assert set(result["bundle_s"]["phases_median"]) == {"data_wait_s", "forward_s", "post_s"}
    # one round of 2 scans: the first and the later scan are the two iterations' phases (the median of two phase
    # times is their mean), and the run is those plus what happens outside the iterations
    bundle = result["bundle_s"]
    assert positive(bundle["first_volume_median"]) and positive(bundle["after_first_median"])
    both = bundle["first_volume_median"] + bundle["after_first_median"]
    assert both == pytest.approx(2 * sum(bundle["phases_median"].values()), rel=1e-6)
    assert bundle["outside_iterations_median"] >= 0
    assert both + bundle["outside_iterations_median"] == pytest.approx(2 * bundle["median"], rel=1e-6)
    if (BUNDLE / "configs" / "inference.json").is_file():
        assert "inference.json" in result["settings"]["bundle_path"]
        assert list((tmp_path / "work" / "predictions").glob("*.nii.gz"))  # the bundle path wrote its masks


def test_memory_smoke(tmp_path):
    result = run_benchmark("memory", tmp_path)
    small, large = (str(n) for n in result["settings"]["sizes"])
    runs = result["runs"]["default"]
    for n in (small, large):
        for key in ("peak_rss_mb", "tree_peak_pss_mb", "run_s"):
            assert positive(runs[n][0][key]), (n, key, runs[n][0])
    assert set(result["growth"]["default"]) >= {"peak_rss_mb", "tree_peak_pss_mb"}


def test_bn_calibration_smoke(tmp_path):
    result = run_benchmark("bn_calibration", tmp_path)
    for key in ("epoch_with_s", "epoch_without_s", "handler_s"):
        assert positive(result["medians"][key]), key
    assert positive(result["share_of_epoch"]) and positive(result["epoch_ratio"])


def test_compare_modes_smoke(tmp_path):
    """Every mode trains for one epoch on the same data and is scored on held-out scans."""
    from tests.conftest import write_dataset

    data = write_dataset(tmp_path / "data")
    test = tmp_path / "test"
    for kind, suffix in (("images", "_0000"), ("labels", "")):
        (test / f"{kind}Ts").mkdir(parents=True)
        for case in ("case_00", "case_01"):
            (test / f"{kind}Ts" / f"{case}{suffix}.nii.gz").write_bytes(
                (data / f"{kind}Tr" / f"{case}{suffix}.nii.gz").read_bytes()
            )
    out = tmp_path / "modes.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.compare_modes",
            "--smoke",
            "--dataset_dir",
            str(data),
            "--test_dir",
            str(test),
            "--json",
            str(out),
        ],
        cwd=BUNDLE,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(BUNDLE)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    assert [r["mode"] for r in rows] == ["2D", "2.5D", "3D"]
    for row in rows:
        assert row["epochs"] == 1 and positive(row["median_epoch_seconds"])
        assert 0 <= row["test_dice"] <= 1 and 0 <= row["best_dice"] <= 1
    assert "| 3D |" in proc.stdout


LOSO_SETTINGS = "--spatial_size 32 --num_workers 0 --slice_batch 16"


def loso_command(data: Path, tmp_path: Path, train_args: str = "") -> list[str]:
    """``benchmarks.leave_one_source_out`` on ``data``'s six cases as sources a, a, b, b, c, c (its cases.json written
    here), source b held out, ``tmp_path/loso.json`` the rows, a one-epoch training with ``train_args`` appended."""
    cases = [{"case": f"case_{i:02d}", "source": s} for i, s in enumerate(["a", "a", "b", "b", "c", "c"])]
    (data / "cases.json").write_text(json.dumps(cases))
    return [
        *[sys.executable, "-m", "benchmarks.leave_one_source_out", "--dataset_dir", str(data)],
        *["--sources", "a", "b", "c", "--holdout", "b"],
        *["--work_dir", str(tmp_path / "work"), "--json", str(tmp_path / "loso.json")],
        *["--train_args", f"--epochs 1 --iterations_per_epoch 2 --slices_per_volume 4 {LOSO_SETTINGS}{train_args}"],
        *["--inference_args", LOSO_SETTINGS],
    ]


def run_loso(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(BUNDLE), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=BUNDLE, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("mode_args,mode", [("", "2D"), (" --unet_dimensions 2.5D", "2.5D")])
def test_leave_one_source_out_trains_predicts_and_scores_each_held_out_case(tmp_path, mode_args, mode):
    from tests.conftest import VOLUMES, write_dataset

    data = write_dataset(tmp_path / "data", volumes=VOLUMES + VOLUMES[:1])
    out = tmp_path / "loso.json"
    # a baseline's masks already made (as a tool's are, once per scan): the held-out labels themselves, so Dice 1
    robex = tmp_path / "work" / "baselines" / "robex"
    robex.mkdir(parents=True)
    for case in ("case_02", "case_03"):
        (robex / f"{case}.nii.gz").write_bytes((data / "labelsTr" / f"{case}.nii.gz").read_bytes())
    (robex / "seconds.json").write_text(json.dumps({"case_02": 61.0, "case_03": 62.0}))
    proc = run_loso([*loso_command(data, tmp_path, mode_args), "--baselines", *(["robex"] if mode == "2D" else [])])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [r["case"] for r in rows] == ["case_02", "case_03"]
    assert all(r["trained_on"] == ["a", "c"] and 0.0 <= r["dice"] <= 1.0 and r["train_minutes"] > 0 for r in rows)
    trained = sorted(p.name for p in (tmp_path / "work" / "b" / "train" / "labelsTr").iterdir())
    assert trained == ["case_00.nii.gz", "case_01.nii.gz", "case_04.nii.gz", "case_05.nii.gz"]
    assert "| case_02 | a, c |" in proc.stdout
    if mode == "2D":
        assert [(r["robex"]["dice"], r["robex"]["seconds"]) for r in rows] == [(1.0, 61.0), (1.0, 62.0)]
        assert "robex Dice / HD95 mm / s" in proc.stdout and "| 1.0000 / 0.00 / 61 |" in proc.stdout
    else:
        assert "robex" not in rows[0] and "robex" not in proc.stdout
    assert json.loads((tmp_path / "work" / "b" / "models" / "model.json").read_text())["unet_dimensions"] == mode


def test_leave_one_source_out_scores_each_class_beside_kmeans_on_a_set_of_several_classes(tmp_path):
    from tests.conftest import CLASS_VALUES, VOLUMES, write_class_dataset

    data = write_class_dataset(tmp_path / "data", volumes=VOLUMES + VOLUMES[:1])
    out = tmp_path / "loso.json"
    cmd = loso_command(data, tmp_path)
    # k-means is the tissue set's default; on other classes it runs when asked, clusters darkest first
    proc = run_loso([*cmd, "--baselines", "kmeans"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [r["case"] for r in rows] == ["case_02", "case_03"]
    for row in rows:
        assert set(row["classes"]) == set(row["kmeans"]["classes"]) == {"shell", "core"}
        assert all(0.0 <= s["dice"] <= 1.0 for s in row["classes"].values())
        # the darker shell and the brighter core are told apart, each scored against its own class
        assert all(s["dice"] > 0.8 for s in row["kmeans"]["classes"].values()), row["kmeans"]
    # the fold trained on the set's named classes, not on "class 2" and "class 5"
    assert json.loads((tmp_path / "work" / "b" / "models" / "model.json").read_text())["label_classes"] == CLASS_VALUES
    kmeans = np.asarray(nib.load(tmp_path / "work" / "baselines" / "kmeans" / "case_02.nii.gz").dataobj)
    assert set(np.unique(kmeans)) == {0, 2, 5}
    assert "| held-out case | trained on | shell Dice / HD95 mm | core Dice / HD95 mm | kmeans shell |" in proc.stdout
    assert "| mean Dice |" in proc.stdout
    wrong = run_loso([*cmd, "--baselines", "robex"])
    assert (
        wrong.returncode == 2 and "--baselines robex does not fit" in wrong.stderr and "Traceback" not in wrong.stderr
    )


def test_brain_mask_speed_times_each_bundle_setting_in_whole_processes(tmp_path):
    from tests.conftest import write_dataset

    data = write_dataset(tmp_path / "data")
    scan = sorted((data / "imagesTr").glob("*_0000.nii.gz"))[0]
    out = tmp_path / "speed.json"
    cmd = [sys.executable, "-m", "benchmarks.brain_mask_speed", "--scan", str(scan), "--baselines"]
    cmd += ["--repeats", "1", "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": str(BUNDLE), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=BUNDLE, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seconds = json.loads(out.read_text())["seconds"]
    assert list(seconds) == [
        "bundle (3 planes, no TTA: the default)",
        "bundle (3 planes, flip TTA: 12 passes)",
        "bundle (1 plane, no TTA)",
    ]
    assert all(len(v) == 1 and v[0] > 0 for v in seconds.values())
    assert "| bundle (1 plane, no TTA) |" in proc.stdout
    bad = subprocess.run(
        [*cmd[:4], str(data / "imagesTr")], cwd=BUNDLE, capture_output=True, text=True, timeout=120, env=env
    )
    assert bad.returncode == 1 and "not named <case>_0000.nii.gz" in bad.stderr and "Traceback" not in bad.stderr
