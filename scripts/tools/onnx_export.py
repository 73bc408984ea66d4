"""Export a trained network to ONNX with a dynamic batch axis and check it against PyTorch in onnxruntime.

    python -m scripts.tools.onnx_export --ckpt_file models/model.pt --filepath models/model.onnx

Needs the optional requirements (``pip install -r requirements-onnx.txt``). Input ``image`` is
``[batch, channels, spatial_size, spatial_size]`` (z-scored slices; 3D: ``[batch, 1, *patch_size]``), output ``pred`` the
logits of the same shape; mode, sizes and channels are those recorded with the weights (``scripts.networks.model_settings``),
which the ONNX file's metadata keeps as ``model_settings``. torch 2.9+ defaults to the ``torch.export``-based
exporter, which needs ``onnxscript``; this uses the TorchScript-based exporter (``dynamo=False``), which works offline
with torch alone.
"""

from __future__ import annotations

import ast
import inspect
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from monai.bundle import ConfigParser

from scripts.common.durable_write import replace_durably
from scripts.common.tool_arguments import ToolArgumentParser
from scripts.networks.weights import load_weights

logger = logging.getLogger(__name__)


class ExportError(RuntimeError):
    """The exported model does not reproduce the PyTorch network."""


def config_files(value: str) -> str | list[str]:
    """One path, or a layered list written as on the bundle command line: ``"['a.json','b.json']"``."""
    return ast.literal_eval(value) if value.strip().startswith("[") else value


def build_network(config_file, ckpt_file: str) -> tuple[torch.nn.Module, tuple, dict]:
    """``network_def`` of ``config_file`` (one file or a layered list) with the weights of ``ckpt_file``, in eval
    mode on the CPU, the shape of one input without the batch axis, and the settings ``ckpt_file`` was trained with
    (``scripts.networks.model_settings``): ``(channels, S, S)`` for the 2D and 2.5D networks (``S`` the trained
    ``spatial_size``), ``(1, *patch_size)`` for the 3D one."""
    parser = ConfigParser()
    parser.read_config(config_file)
    parser["ckpt_path"] = str(ckpt_file)
    settings = parser.get_parsed_content("model_settings")
    network = load_weights(parser.get_parsed_content("network_def"), ckpt_file).cpu().eval()
    args = settings["network_args"]
    if int(args["spatial_dims"]) == 3:
        return network, (int(args["in_channels"]), *settings["patch_size"]), settings
    size = int(settings["spatial_size"])
    return network, (int(args["in_channels"]), size, size), settings


def _legacy_exporter() -> dict:
    """``dynamo=False`` where ``torch.onnx.export`` has that switch (torch 2.5+); older torch has only that exporter."""
    return {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}


def export_onnx(
    network: torch.nn.Module, filepath: str, input_shape: tuple, opset: int = 17, meta: dict | None = None
) -> None:
    """Write ``network`` to ``filepath`` with input ``image`` and output ``pred``, batch axis dynamic."""
    import onnx

    example = torch.randn(2, *input_shape)
    Path(filepath).parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        torch.onnx.export(
            network,
            (example,),
            filepath,
            input_names=["image"],
            output_names=["pred"],
            dynamic_axes={"image": {0: "batch"}, "pred": {0: "batch"}},
            opset_version=opset,
            **_legacy_exporter(),
        )
    model = onnx.load(filepath)
    onnx.checker.check_model(model)
    for key, value in (meta or {}).items():
        model.metadata_props.add(key=key, value=str(value))
    onnx.save(model, filepath)


def max_abs_diff(
    network: torch.nn.Module, filepath: str, input_shape: tuple, batch_sizes=(1, 3), seed: int = 0
) -> float:
    """Largest absolute difference between onnxruntime and PyTorch outputs on random inputs of several batch sizes."""
    import onnxruntime as ort

    session = ort.InferenceSession(filepath, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for batch in batch_sizes:
        x = torch.randn(batch, *input_shape, generator=generator)
        with torch.no_grad():
            expected = network(x).numpy()
        (got,) = session.run(["pred"], {"image": x.numpy()})
        if got.shape != expected.shape:
            raise ExportError(f"{filepath}: output shape {got.shape} for batch {batch}, PyTorch gives {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def main(argv=None) -> int:
    parser = ToolArgumentParser(prog="python -m scripts.tools.onnx_export", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_file", default="models/model.pt", help="models/model.pt or a training checkpoint")
    parser.add_argument("--filepath", default="models/model.onnx", help="where the ONNX model goes")
    parser.add_argument(
        "--config_file", default="configs/inference.json", help="config with network_def and model_settings"
    )
    parser.add_argument("--meta_file", default="configs/metadata.json", help="its version is stored in the ONNX model")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--atol", type=float, default=1e-4, help="largest accepted |onnxruntime - PyTorch|")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")

    network, input_shape, settings = build_network(config_files(args.config_file), args.ckpt_file)
    meta = {}
    if Path(args.meta_file).is_file():
        meta = {"bundle_version": json.loads(Path(args.meta_file).read_text()).get("version", "")}
    meta.update(input_shape=list(input_shape), model_settings=json.dumps(settings, sort_keys=True))
    diff = None

    def export_and_check(candidate: Path) -> None:
        nonlocal diff
        export_onnx(network, str(candidate), input_shape, args.opset, meta)
        diff = max_abs_diff(network, str(candidate), input_shape)
        if diff > args.atol:
            raise ExportError(
                f"{args.filepath}: onnxruntime differs from PyTorch by {diff:.3g} > atol {args.atol:g}; "
                "nothing written"
            )

    # written and checked under a temporary name: a model that fails the check never lands under --filepath
    replace_durably(export_and_check, Path(args.filepath), suffix=".onnx")
    logger.info(
        "Exported %s (input [batch, %s], batch dynamic); max |onnxruntime - PyTorch| = %.3g",
        args.filepath,
        ", ".join(map(str, input_shape)),
        diff,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
