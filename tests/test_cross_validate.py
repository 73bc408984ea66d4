"""scripts/tools/cross_validate.py: every fold trained and scored on its own held-out volumes, one table."""

import csv

from tests.conftest import FAST, ONE_THREAD_ENV, cli_args, run_module, write_dataset


def test_two_folds_score_every_case_once_and_write_the_tables(tmp_path):
    data = write_dataset(tmp_path / "data")
    cv_dir = tmp_path / "cv"
    settings = {**FAST, "amp": "false", "device": "cpu", "bn_calibration_batches": 1}
    result = run_module(
        [
            "scripts.tools.cross_validate",
            "--dataset_dir",
            str(data),
            "--num_folds",
            "2",
            "--cv_dir",
            str(cv_dir),
            *cli_args(settings),
        ],
        env=ONE_THREAD_ENV,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    with open(cv_dir / "cv_metrics.csv") as f:
        rows = list(csv.DictReader(f))
    # each of the 5 cases held out by exactly one fold, scored by evaluate.json (dice and hd95 columns)
    assert sorted(r["case"] for r in rows) == [f"case_{i:02d}" for i in range(5)]
    assert {r["fold"] for r in rows} == {"0", "1"}
    assert all(0.0 <= float(r["dice"]) <= 1.0 for r in rows) and "hd95_mm" in rows[0]
    markdown = (cv_dir / "cv_metrics.md").read_text()
    assert "| mean |" in markdown and "hd95_mm" in markdown and markdown.count("| case_") == 5
    for fold in (0, 1):
        assert (cv_dir / f"fold_{fold}" / "model.pt").is_file()


def test_bad_arguments_are_one_line(tmp_path):
    result = run_module(["scripts.tools.cross_validate", "--dataset_dir", str(tmp_path), "--num_folds", "1"])
    assert result.returncode != 0 and "num_folds=1" in result.stderr


def test_tables_that_cannot_be_written_are_one_line_and_the_folds_stay(tmp_path, monkeypatch):
    """A full disk when the tables are written (issue 30, item 2): the folds' own results are kept for --report_only."""
    import errno

    import pytest

    from scripts.common.durable_write import WriteError
    from scripts.tools import cross_validate

    cv_dir = tmp_path / "cv"
    (cv_dir / "fold_0" / "eval").mkdir(parents=True)
    (cv_dir / "fold_0" / "eval" / "metrics.csv").write_text("case,dice\na,0.9\n")

    def disk_full(text, path):
        raise WriteError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cross_validate, "write_text_durably", disk_full)
    args = ["--dataset_dir", str(tmp_path), "--num_folds", "2", "--cv_dir", str(cv_dir), "--report_only"]
    with pytest.raises(SystemExit) as stopped:
        cross_validate.main(args)
    assert str(stopped.value) == (
        f"cross-validation stopped: cannot write cv_metrics.csv in {cv_dir}: No space left on device; each fold's "
        f"results in {cv_dir} are intact: --report_only writes the tables once there is room"
    )
    assert (cv_dir / "fold_0" / "eval" / "metrics.csv").read_text() == "case,dice\na,0.9\n"
