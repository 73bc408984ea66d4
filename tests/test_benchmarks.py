"""Each benchmark runs end to end with ``--smoke`` (tiny sizes) in a real subprocess and writes its JSON.

No timing is asserted here: CI machines are shared and noisy; the numbers come from full runs (benchmarks/README.md).
The quality studies (scripts/studies) are tested in tests/test_studies.py.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

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
