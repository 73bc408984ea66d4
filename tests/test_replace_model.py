"""The shipped model is never replaced by accident: training refuses to overwrite a model trained on other data."""

from __future__ import annotations

import shutil

import pytest

from scripts.networks.model_settings import refuse_replacing, sidecar
from tests.conftest import BUNDLE, FAST, TRAIN_CONFIG, cli_args, run_bundle, write_dataset


def test_training_on_new_data_keeps_the_shipped_model(tmp_path, dataset):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("model.pt", "model.json"):
        shutil.copy(BUNDLE / "models" / name, models / name)
    shipped = (models / "model.pt").read_bytes()
    args = ["--config_file", TRAIN_CONFIG, *cli_args({**FAST, "bundle_root": tmp_path, "dataset_dir": dataset})]

    result = run_bundle(args)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"{models / 'model.pt'}: holds a model trained on the development set of docs/README.md")
    assert "--model_path" in line and "--replace_model true" in line
    assert (models / "model.pt").read_bytes() == shipped
    assert not (tmp_path / "runs" / "SMALabeller").exists()  # refused before any work

    result = run_bundle([*args, "--model_path", str(tmp_path / "runs" / "mine" / "model.pt")])
    assert result.returncode == 0, result.stderr[-3000:]
    assert (models / "model.pt").read_bytes() == shipped and (tmp_path / "runs" / "mine" / "model.pt").is_file()


def test_a_rerun_on_its_own_data_replaces_its_model(tmp_path):
    data, other = write_dataset(tmp_path / "data"), write_dataset(tmp_path / "other")
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    refuse_replacing(tmp_path / "absent.pt", data / "imagesTr")  # nothing to replace
    with pytest.raises(SystemExit, match="holds a model trained on data not recorded"):
        refuse_replacing(model, data / "imagesTr")  # weights without a record: kept
    sidecar(model).write_text('{"trained_on": "%s"}' % (data / "imagesTr").resolve())
    refuse_replacing(model, data / "imagesTr")
    refuse_replacing(model, str(data / "imagesTr") + "/")  # the same folder, spelled otherwise
    with pytest.raises(SystemExit, match=f"trained on {(data / 'imagesTr').resolve()}, not on"):
        refuse_replacing(model, other / "imagesTr")
    refuse_replacing(model, other / "imagesTr", replace_model="true")
    refuse_replacing(model, other / "imagesTr", resuming=True)  # the resume check governs a change of data
