"""The quality studies (scripts/studies) end to end in real subprocesses: the three modes compared on tiny data, and
leave-one-source-out training, predicting and scoring each held-out case beside its baselines.

Figures are not asserted (the data are tiny); the real ones come from full runs (scripts/studies/README.md).
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


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


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
            "scripts.studies.compare_modes",
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
    """``scripts.studies.leave_one_source_out`` on ``data``'s six cases as sources a, a, b, b, c, c (its cases.json written
    here), source b held out, ``tmp_path/loso.json`` the rows, a one-epoch training with ``train_args`` appended."""
    cases = [{"case": f"case_{i:02d}", "source": s} for i, s in enumerate(["a", "a", "b", "b", "c", "c"])]
    (data / "cases.json").write_text(json.dumps(cases))
    return [
        *[sys.executable, "-m", "scripts.studies.leave_one_source_out", "--dataset_dir", str(data)],
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
