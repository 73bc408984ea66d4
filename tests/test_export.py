"""TorchScript and ONNX export match PyTorch; model-zoo checks (metadata, network shape, README)."""

from __future__ import annotations

import inspect
import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from scripts.tools.onnx_export import build_network, export_onnx, max_abs_diff
from tests.conftest import BUNDLE, INFERENCE_CONFIG, METADATA, TRAINED, run_module

# the model zoo's metadata schema: the project's offline copy beside the clone, else the copy kept in tests/data (the
# same file, from MONAI-extra-test-data release 0.8.1, Apache-2.0), so the test needs nothing beside a fresh clone
SHARED_SCHEMA = BUNDLE.parent / "shared" / "model-zoo" / "meta_schema_20240725.json"
SCHEMA = SHARED_SCHEMA if SHARED_SCHEMA.is_file() else BUNDLE / "tests" / "data" / "meta_schema_20240725.json"


def trained_network(model_path):
    network, _, _ = build_network(INFERENCE_CONFIG, str(model_path))
    return network


# --- export -----------------------------------------------------------------------------------------------------
def test_ckpt_export_gives_torchscript_that_matches_pytorch(trained_bundle, tmp_path, one_torch_thread):
    ts = tmp_path / "model.ts"
    result = run_module(
        [
            "monai.bundle",
            "ckpt_export",
            "--net_id",
            "network_def",
            "--filepath",
            str(ts),
            "--ckpt_file",
            str(trained_bundle["model"]),
            "--meta_file",
            METADATA,
            "--config_file",
            INFERENCE_CONFIG,
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    extra = {"metadata.json": "", "inference.json": ""}
    scripted = torch.jit.load(str(ts), _extra_files=extra)
    assert json.loads(extra["metadata.json"])["version"] == json.loads(open(METADATA).read())["version"]
    assert "network_args" in json.loads(extra["inference.json"])["model_settings"]
    network = trained_network(trained_bundle["model"])
    x = torch.randn(3, 1, TRAINED["spatial_size"], TRAINED["spatial_size"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = network(x), scripted(x)
    diff = float((expected - got).abs().max())
    print(f"TorchScript max |diff| = {diff:.3g}")
    assert got.shape == expected.shape and diff < 1e-5
    assert float(expected.abs().max()) > 1.0  # trained weights, not an all-zero network


def test_onnx_export_has_a_dynamic_batch_and_matches_pytorch(trained_bundle, tmp_path, one_torch_thread):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "model.onnx"
    result = run_module(
        ["scripts.tools.onnx_export", "--ckpt_file", str(trained_bundle["model"]), "--filepath", str(path)]
    )  # the input size comes from the settings recorded with the model
    assert result.returncode == 0, result.stderr[-3000:]
    logged = re.search(r"max \|onnxruntime - PyTorch\| = (\S+)", result.stdout + result.stderr)
    assert logged and float(logged.group(1)) <= 1e-4

    model = onnx.load(str(path))
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert model.graph.input[0].name == "image" and batch_dim.dim_param == "batch"
    version = json.loads(open(METADATA).read())["version"]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["bundle_version"] == version
    assert json.loads(props["model_settings"])["spatial_size"] == TRAINED["spatial_size"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    network = trained_network(trained_bundle["model"])
    size = TRAINED["spatial_size"]
    for batch in (1, 5):
        x = torch.randn(batch, 1, size, size, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected = network(x).numpy()
        (got,) = session.run(["pred"], {"image": x.numpy()})
        diff = float(np.abs(got - expected).max())
        print(f"ONNX batch {batch}: max |diff| = {diff:.3g}")
        assert got.shape == expected.shape and diff <= 1e-4

    # the check catches a model that does not match: same architecture, slightly different weights
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(0.01)
    assert max_abs_diff(network, str(path), (1, size, size)) > 1e-3


def test_onnx_export_of_an_untrained_network_runs_in_process(tmp_path, one_torch_thread):
    pytest.importorskip("onnxruntime")
    parser = ConfigParser()
    parser.read_config(INFERENCE_CONFIG)
    network = parser.get_parsed_content("network_def").eval()
    export_onnx(network, str(tmp_path / "m.onnx"), (1, 16, 16), meta={"bundle_version": "x"})
    assert max_abs_diff(network, str(tmp_path / "m.onnx"), (1, 16, 16), batch_sizes=(2,)) < 1e-4


def saved_untrained(folder: Path, trained: dict) -> tuple[torch.nn.Module, Path]:
    """inference.json's network for ``trained``'s network arguments, its initial weights saved as ``folder/model.pt``
    with ``trained`` as its settings; (the network in eval mode, the weights file)."""
    from scripts.networks import model_settings

    parser = ConfigParser()
    parser.read_config(INFERENCE_CONFIG)
    parser["network_args"] = trained["network_args"]
    network = parser.get_parsed_content("network_def").eval()
    model = folder / "model.pt"
    torch.save(network.state_dict(), model)
    model_settings.write(trained, model)
    return network, model


@pytest.mark.parametrize(
    "mode, settings, shape",
    [("2.5D", {"context_slices": 2}, (5, 32, 32)), ("3D", {"patch_size": [32, 32, 16]}, (1, 32, 32, 16))],
)
def test_each_mode_exports_to_torchscript_and_onnx(tmp_path, one_torch_thread, mode, settings, shape):
    """2.5D and 3D networks: ckpt_export and scripts.tools.onnx_export with inference.json alone, the mode, sizes and
    channels read from the settings saved beside the weights."""
    pytest.importorskip("onnxruntime")
    from scripts.networks import model_settings

    trained = {**model_settings.default_settings(), "unet_dimensions": mode, "spatial_size": 32, **settings}
    trained["network_args"] = {
        **trained["network_args"],
        "spatial_dims": 3 if mode == "3D" else 2,
        "in_channels": 2 * trained["context_slices"] + 1,
    }
    network, model = saved_untrained(tmp_path, trained)
    meta = f"['{METADATA}','{BUNDLE / 'configs' / f'metadata_{mode.lower()}.json'}']"
    ts = tmp_path / "model.ts"
    # ckpt_export takes one meta file (MONAI 1.6 cannot layer them there); verify_net_in_out below checks the layered one
    result = run_module(
        [
            "monai.bundle",
            "ckpt_export",
            "--net_id",
            "network_def",
            "--filepath",
            str(ts),
            "--ckpt_file",
            str(model),
            "--ckpt_path",
            str(model),
            "--meta_file",
            METADATA,
            "--config_file",
            INFERENCE_CONFIG,
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(ts))(x), network(x), atol=1e-5)
    onnx_path = tmp_path / "model.onnx"
    result = run_module(
        ["scripts.tools.onnx_export", "--ckpt_file", str(model), "--filepath", str(onnx_path), "--meta_file", METADATA]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert max_abs_diff(network, str(onnx_path), shape, batch_sizes=(1, 2)) < 1e-4
    overrides = ["--ckpt_path", str(model)]
    verify = run_module(
        [
            "monai.bundle",
            "verify_net_in_out",
            "--net_id",
            "network_def",
            "--meta_file",
            meta,
            "--config_file",
            INFERENCE_CONFIG,
            *overrides,
        ]
    )
    assert verify.returncode == 0, verify.stderr[-3000:]


# --- model zoo --------------------------------------------------------------------------------------------------
def test_model_zoo_commands_pass(tmp_path):
    schema = tmp_path / SCHEMA.name
    print(f"metadata schema: {SCHEMA}")
    shutil.copy(SCHEMA, schema)  # verify_metadata downloads the schema unless it is already at --filepath
    metadata = run_module(["monai.bundle", "verify_metadata", "--meta_file", METADATA, "--filepath", str(schema)])
    assert (
        metadata.returncode == 0 and "metadata is verified with no error" in metadata.stdout + metadata.stderr
    ), metadata.stderr[-3000:]
    net = run_module(
        [
            "monai.bundle",
            "verify_net_in_out",
            "--net_id",
            "network_def",
            "--meta_file",
            METADATA,
            "--config_file",
            INFERENCE_CONFIG,
        ]
    )
    assert (
        net.returncode == 0 and "data shape of network is verified with no error" in net.stdout + net.stderr
    ), net.stderr[-3000:]


def test_metadata_version_changelog_and_network_format():
    meta = json.loads(open(METADATA).read())
    versions = [tuple(int(p) for p in v.split(".")) for v in meta["changelog"]]
    assert meta["version"] in meta["changelog"] and tuple(int(p) for p in meta["version"].split(".")) == max(versions)
    assert "inference" in meta["changelog"]["0.2.0"] and "3D" in meta["changelog"]["0.3.0"]
    assert "models/model.pt" in meta["changelog"]["0.6.0"] and "iterations_per_epoch" in meta["changelog"]["0.6.0"]
    assert "models/model.json" in meta["changelog"]["0.7.0"] and "run_config" in meta["changelog"]["0.8.0"]
    assert "32 epochs" in meta["changelog"]["0.9.0"] and "derive_configs" in meta["changelog"]["0.9.1"]
    assert "40 epochs" in meta["changelog"]["0.10.0"]
    assert "cache" in meta["changelog"]["0.4.0"] and "slice inferer" in meta["changelog"]["0.5.0"]
    assert "plain tensors" in meta["changelog"]["0.5.1"]
    image, pred = meta["network_data_format"]["inputs"]["image"], meta["network_data_format"]["outputs"]["pred"]
    assert image["spatial_shape"] == pred["spatial_shape"] == ["16*n", "16*n"]
    # "16*n" is what the network really takes: any multiple of 16 in, the same size out; 24 does not go through
    parser = ConfigParser()
    parser.read_config(INFERENCE_CONFIG)
    network = parser.get_parsed_content("network_def").eval()
    with torch.no_grad():
        for size in (16, 48, 128):
            out = network(torch.zeros(1, image["num_channels"], size, size))
            assert out.shape == (1, pred["num_channels"], size, size) and out.dtype == getattr(torch, pred["dtype"])
        with pytest.raises(RuntimeError):
            network(torch.zeros(1, 1, 24, 24))


def _readme_commands(section_text: str) -> list[list[str]]:
    blocks = re.findall(r"```\n(.*?)```", section_text, flags=re.S)
    return [shlex.split(line) for block in blocks for line in block.splitlines() if line.startswith("python -m ")]


def test_readme_follows_the_model_zoo_outline_and_its_commands_name_real_options():
    readme = (BUNDLE / "docs" / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", readme, flags=re.M)
    outline = [
        "Model Overview",
        "Data",
        "Training configuration",
        "Input and output",
        "Performance",
        "MONAI Bundle Commands",
        "References",
        "License",
    ]
    assert [h for h in headings if h in outline] == outline
    section = readme.split("## MONAI Bundle Commands")[1].split("\n## ")[0]
    # train, multi-GPU, evaluate, inference, export, each as a command in a code block
    blocks = "\n".join(re.findall(r"```\n(.*?)```", section, flags=re.S))
    assert "monai.bundle run --config_file configs/train.json" in blocks and "torchrun" in blocks
    for title in ("### Evaluation", "### Inference", "### Export"):
        assert title in section
    # the evaluation, inference and export commands: every option exists, every file named is there
    commands = section[section.index("### Evaluation") :]

    from monai.bundle import scripts as bundle_scripts

    from scripts.tools import onnx_export

    checked = set()
    for argv in _readme_commands(commands):
        module, rest = argv[2], argv[3:]
        options = [a[2:] for a in rest if a.startswith("--")]
        if module == "scripts.tools.onnx_export":
            known = set(re.findall(r'add_argument\("--(\w+)"', inspect.getsource(onnx_export.main)))
            assert set(options) <= known, argv
        else:
            command = rest[0]
            known = set(inspect.signature(getattr(bundle_scripts, command)).parameters)
            if command == "run":  # the other options are config keys
                files = rest[rest.index("--config_file") + 1]
                files = json.loads(files.replace("'", '"')) if files.startswith("[") else [files]
                config = ConfigParser()
                config.read_config([str(BUNDLE / f) for f in files])
                known |= set(config.get())
            named = [rest[i + 1] for i, a in enumerate(rest) if a in ("--config_file", "--meta_file")]
            for f in (f for f in named if "[" not in f):
                assert (BUNDLE / f).is_file(), (argv, f)
            assert set(options) <= known, (argv, set(options) - known)
        checked.add(argv[2] if module == "scripts.tools.onnx_export" else rest[0])
    assert checked == {"run", "ckpt_export", "verify_net_in_out", "scripts.tools.onnx_export"}


def test_an_onnx_model_that_fails_the_check_is_not_left_in_place(tmp_path, one_torch_thread):
    pytest.importorskip("onnxruntime")
    from scripts.tools.onnx_export import ExportError, main

    parser = ConfigParser()
    parser.read_config(INFERENCE_CONFIG)
    model = tmp_path / "model.pt"
    torch.save(parser.get_parsed_content("network_def").state_dict(), model)
    out = tmp_path / "out" / "model.onnx"
    with pytest.raises(ExportError, match="nothing written"):
        main(["--ckpt_file", str(model), "--filepath", str(out), "--atol", "-1"])  # no model can pass
    assert not out.exists() and not list((tmp_path / "out").iterdir())
    assert main(["--ckpt_file", str(model), "--filepath", str(out)]) == 0 and out.is_file()


def test_a_model_of_three_classes_exports_its_three_output_channels(tmp_path, one_torch_thread):
    """The class count travels with the weights: TorchScript and ONNX built from inference.json alone output a channel
    per class of the model's settings."""
    pytest.importorskip("onnxruntime")
    from scripts.networks import model_settings

    trained = {**model_settings.default_settings(), "spatial_size": 32}
    trained["label_classes"] = {"background": 0, "shell": 2, "core": 5}
    trained["network_args"] = {**trained["network_args"], "out_channels": 3}
    network, model = saved_untrained(tmp_path, trained)
    ts, onnx_path = tmp_path / "model.ts", tmp_path / "model.onnx"
    for command in (
        ["monai.bundle", "ckpt_export", "--net_id", "network_def", "--filepath", str(ts), "--ckpt_file", str(model)],
        ["scripts.tools.onnx_export", "--ckpt_file", str(model), "--filepath", str(onnx_path)],
    ):
        extra = ["--ckpt_path", str(model), "--meta_file", METADATA, "--config_file", INFERENCE_CONFIG]
        result = run_module(command + (extra if command[0] == "monai.bundle" else ["--meta_file", METADATA]))
        assert result.returncode == 0, result.stderr[-3000:]
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        scripted = torch.jit.load(str(ts))(x)
        assert scripted.shape == (2, 3, 32, 32) and torch.allclose(scripted, network(x), atol=1e-5)
    assert max_abs_diff(network, str(onnx_path), (1, 32, 32), batch_sizes=(1, 2)) < 1e-4
