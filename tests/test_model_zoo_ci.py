"""The model zoo's own CI on a copy of this bundle laid out as the zoo keeps it (``models/<bundle>``, run from the
zoo's root): ``ci/verify_bundle.py`` in full mode, unmodified (tests/data/model_zoo_ci/SOURCE.md), and its
spleen-style unit test (train, train + evaluate, infer through ``ConfigWorkflow`` with ``check_properties()``
empty) in each mode."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigWorkflow

from tests.conftest import BUNDLE, FAST, write_class_dataset, write_dataset
from tests.test_export import SCHEMA
from tests.test_modes import MODES

ZOO_CI = BUNDLE / "tests" / "data" / "model_zoo_ci"
NAME = "smalabeller"


def zoo_copy(root: Path) -> Path:
    """``root/models/smalabeller``: what a pull request to the model zoo would add, beside an empty model_info.json."""
    bundle = root / "models" / NAME
    for folder in ("configs", "scripts", "models", "docs"):
        shutil.copytree(BUNDLE / folder, bundle / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(BUNDLE / "LICENSE", bundle / "LICENSE")
    (root / "models" / "model_info.json").write_text("{}\n")  # the released versions: none
    return bundle


def verify_bundle(root: Path, bundle: Path) -> str:
    """The zoo's ``ci/verify_bundle.py -m full`` on ``root/models/smalabeller``; its output, after asserting each step."""
    shutil.copytree(ZOO_CI, root / "ci")
    (bundle / "eval").mkdir()
    shutil.copy(SCHEMA, bundle / "eval" / "schema.json")  # where the zoo's ci/prepare_schema.py downloads it
    print(f"metadata schema: {SCHEMA}")
    result = subprocess.run(
        [sys.executable, "ci/verify_bundle.py", "-b", NAME, "-p", "models", "-m", "full"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for step in ("directory is verified", "version and changelog are verified", "metadata format is verified"):
        assert step in output, output[-3000:]
    assert "data shape is verified" in output and "export weights into TorchScript module successfully" in output
    return output


def test_verify_bundle_passes_in_full_mode(tmp_path):
    bundle = zoo_copy(tmp_path)
    verify_bundle(tmp_path, bundle)
    torch.jit.load(str(bundle / "models" / "verify_model.ts"))


@pytest.mark.parametrize("mode", ["2.5D", "3D"])
def test_verify_bundle_passes_for_the_bundle_retrained_on_three_classes(tmp_path, mode):
    """A user's bundle for the zoo: trained on a label map of three classes in another mode (replacing the shipped
    model), its metadata's input and output brought to the new model by ``derive_configs``; the zoo's check builds
    the network and exports it."""
    bundle = zoo_copy(tmp_path)
    data = write_class_dataset(tmp_path / "data")
    configs = [str(bundle / "configs" / "train.json"), str(bundle / MODES[mode]["train"])]
    common = {"bundle_root": str(bundle), "meta_file": str(bundle / "configs" / "metadata.json")}
    overrides = {"dataset_dir": str(data), "replace_model": True, **FAST, **MODES[mode]["settings"]}
    logging_file = str(bundle / "configs" / "logging.conf")
    run_checked(
        ConfigWorkflow(workflow_type="train", config_file=configs, logging_file=logging_file, **common, **overrides)
    )
    derive = [sys.executable, "-m", "scripts.tools.derive_configs", "--config_dir", str(bundle / "configs")]
    assert subprocess.run(derive, cwd=bundle, capture_output=True, timeout=300).returncode == 0
    described = json.loads((bundle / "configs" / "metadata.json").read_text())["network_data_format"]
    image, pred = described["inputs"]["image"], described["outputs"]["pred"]
    assert pred["num_channels"] == 3 and list(pred["channel_def"].values()) == [
        "background logit",
        "shell logit",
        "core logit",
    ]
    network = json.loads((bundle / "models" / "model.json").read_text())["network_args"]
    assert image["num_channels"] == network["in_channels"] and len(image["spatial_shape"]) == network["spatial_dims"]
    assert image["is_patch_data"] == pred["is_patch_data"] == (mode == "3D")
    if mode == "2.5D":  # context_slices 1, named as configs/metadata_2.5d.json names its five
        assert list(image["channel_def"].values()) == ["slice z-1", "slice z (the one predicted)", "slice z+1"]
    verify_bundle(tmp_path, bundle)
    exported = torch.jit.load(str(bundle / "models" / "verify_model.ts"))
    sample = torch.zeros(1, network["in_channels"], *[32] * network["spatial_dims"])
    assert exported(sample).shape == (1, 3, *[32] * network["spatial_dims"])


def run_checked(workflow: ConfigWorkflow) -> None:
    """The zoo's ``ci/unit_tests/utils.check_workflow`` with ``check_properties=True``."""
    workflow.initialize()
    assert workflow.check_properties() == []
    workflow.run()
    workflow.finalize()


@pytest.mark.parametrize("mode", sorted(MODES))
def test_spleen_style_unit_test_from_the_zoo_root(tmp_path, monkeypatch, mode):
    zoo_copy(tmp_path)
    data = write_dataset(tmp_path / "data")
    monkeypatch.chdir(tmp_path)  # the zoo runs its tests from its root, with relative bundle paths
    root = f"models/{NAME}"
    common = {"bundle_root": root, "meta_file": f"{root}/configs/metadata.json"}
    common["logging_file"] = f"{root}/configs/logging.conf"
    train_files = [f"{root}/configs/train.json"] + ([f"{root}/{MODES[mode]['train']}"] if MODES[mode]["train"] else [])
    overrides = {"dataset_dir": str(data), **FAST, **MODES[mode]["settings"]}
    # the copy holds the shipped model, trained on other data: training replaces it only when told to
    replace = {"replace_model": True}

    run_checked(ConfigWorkflow(workflow_type="train", config_file=train_files, **common, **overrides, **replace))
    trained = json.loads((tmp_path / root / "models" / "model.json").read_text())
    assert trained["unet_dimensions"] == mode
    # evaluation overrides train.json, so it is checked as a train workflow, as the zoo does
    evaluate = ConfigWorkflow(
        workflow_type="train", config_file=[*train_files, f"{root}/configs/evaluate.json"], **common, **overrides
    )
    run_checked(evaluate)
    assert (tmp_path / root / "runs" / "SMALabeller" / "eval" / "summary.json").is_file()
    # inference with the weights handler off (the zoo's "handlers#0#_disabled_"): the trained settings still apply
    infer = ConfigWorkflow(
        workflow_type="infer",
        config_file=f"{root}/configs/inference.json",
        **common,
        dataset_dir=str(data / "imagesTr"),
        num_workers=0,
        **{"handlers#0#_disabled_": True},
    )
    run_checked(infer)
    masks = sorted((tmp_path / root / "predictions").glob("*.nii.gz"))
    assert len(masks) == len(list((data / "imagesTr").glob("*.nii.gz")))
