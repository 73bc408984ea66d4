"""`--tracking mlflow` (MONAI's built-in tracking) logs params, per-epoch metrics and the best model."""

import pytest

from tests.conftest import FAST, TRAIN_CONFIG, cli_args, run_bundle

mlflow = pytest.importorskip("mlflow")


def test_tracking_writes_a_readable_store(tmp_path, dataset):
    store = tmp_path / "store.db"
    args = ["--config_file", TRAIN_CONFIG, "--bundle_root", str(tmp_path), "--dataset_dir", str(dataset)]
    result = run_bundle(
        [
            *args,
            *cli_args({**FAST, "epochs": 2, "lr": 3e-4}),
            "--tracking",
            "mlflow",
            "--tracking_uri",
            f"sqlite:///{store}",
            "--comment",
            "tracked",
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]

    client = mlflow.MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("SMALabeller")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name.endswith("-tracked")
    assert float(run.data.params["lr"]) == 3e-4 and run.data.params["loss_function"] == "combination"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_mean_dice")] == [1, 2]
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 2
    assert client.get_metric_history(run.info.run_id, "train_loss")
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "model.pt" in artifacts and any(a.startswith("config_") for a in artifacts)
