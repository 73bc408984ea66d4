"""Write the parts of the configs that are derived from one source, or check them: ``--check``.

The model zoo reads ``inference.json`` on its own, and ``evaluate.json`` layers on ``train.json`` but reads the
model's settings like inference does, so some facts must appear in more than one file. Each is written once by hand
(train.json's settings, network and validation preprocessing; inference.json's largest-component step) and copied
from there by this tool, never by hand:

* ``train.json#run_config``: every setting train.json writes before its model part (``network_args``) (and each setting a layered
  file adds), as a reference, for the checks, the checkpoints, TensorBoard and MLflow;
* ``inference.json``: the network, the shared settings, the image part of the validation preprocessing, the inferer,
  and the settings read from the model;
* ``evaluate.json``: the settings read from the model, and inference's flip-TTA and largest-component settings and step;
* ``train.json#_desc_loss_function``: the losses by name, from ``scripts.networks.losses.LOSSES``;
* ``docs/settings.md``: every setting of every config with its default and its ``_desc_`` (the one description);
  a setting without a ``_desc_`` is an error of ``--check``;
* ``metadata.json``: the network's input and output (channels, their names, spatial dimensions), from the settings
  recorded with ``models/model.pt`` (``models/model.json``), so that the model zoo's checks of a bundle retrained in
  another mode or on label maps of several classes see the network it ships.

    python -m scripts.tools.derive_configs          # rewrite what differs
    python -m scripts.tools.derive_configs --check  # exit 1 naming each stale key (the tests run this)
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

from monai.bundle import ConfigParser

from scripts.common.paths import CONFIG_DIR
from scripts.common.tool_arguments import ToolArgumentParser
from scripts.data.label_classes import class_names, foreground_names, is_binary
from scripts.networks import model_settings
from scripts.networks.losses import LOSSES

LAYERED_FILES = ("train_2.5d.json", "train_3d.json", "multi_gpu_train.json")
SHIPPED_MODEL = Path("models") / "model.pt"  # beside configs/
# train.json's settings are its top-level keys before this one (its model part), but for the imports
SETTINGS_END = "network_args"
NOT_SETTINGS = ("imports",)
RECORDED_AS_TEXT = ("device",)  # a torch.device: recorded by name so every tracker can store it
SHARED_WITH_INFERENCE = (
    "_desc_device",
    "device",
    "_desc_amp",
    "amp",
    "_desc_num_workers",
    "num_workers",
    "_desc_inference_planes",
    "inference_planes",
    "_desc_slice_batch",
    "slice_batch",
    "_desc_sw_overlap",
    "sw_overlap",
    "_desc_sw_mode",
    "sw_mode",
    "_desc_sw_batch_size",
    "sw_batch_size",
    "network_def",
    "network",
)
SHARED_WITH_EVALUATION = ("tta", "postprocessing_lcc")  # inference.json's, so evaluation scores what it predicts
NOT_READ_BY_INFERENCE = ("label_threshold",)  # it only matters where labels are read
TRAINED_SETTINGS_DESC = (
    "what the model expects, recorded by training beside ckpt_path (model.json) or inside it (.pth); the settings "
    "below default to them, and an override that contradicts them is refused"
)
DERIVED_DESC = "written by python -m scripts.tools.derive_configs from {source}, not by hand: {keys}"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def dump(config: dict) -> str:
    """The model zoo's pretty-format-json layout (--no-sort-keys --indent=4)."""
    return json.dumps(config, indent=4, ensure_ascii=False) + "\n"


def settings_of(train: dict) -> list[str]:
    """The settings: train.json's top-level keys before ``network_args``, where its model part begins."""
    keys = list(train)
    return [k for k in keys[: keys.index(SETTINGS_END)] if not k.startswith("_") and k not in NOT_SETTINGS]


def recorded(keys: list[str]) -> dict:
    return {k: f"$str(@{k})" if k in RECORDED_AS_TEXT else f"@{k}" for k in keys}


def validation_image_transforms(train_path: Path) -> list:
    """validate#preprocessing's transforms that touch the image (the ``%`` macros resolved), on the image alone."""
    parser = ConfigParser()
    parser.read_config(str(train_path))
    parser.parse()
    image_only = []
    for transform in copy.deepcopy(parser.get("validate#preprocessing#transforms")):
        keys = transform["keys"]
        if "image" in ([keys] if isinstance(keys, str) else keys):
            image_only.append({**transform, "keys": "image"})
    return image_only


def trained_settings(keys: list[str]) -> dict:
    return {
        "_desc_trained_settings": TRAINED_SETTINGS_DESC,
        "trained_settings": "$scripts.networks.model_settings.read(@ckpt_path)",
        **{k: f"$@trained_settings['{k}']" for k in keys},
    }


def derived(config_dir: Path) -> dict[str, tuple[str, dict]]:
    """file name -> (its source, {top-level key: value}) for every derived key."""
    train = load(config_dir / "train.json")
    inference = load(config_dir / "inference.json")
    model_keys = list(train["model_settings"])
    read_by_inference = [k for k in model_keys if k not in NOT_READ_BY_INFERENCE]
    losses = "the loss: " + " | ".join(f"{name} ({meaning})" for name, meaning in LOSSES.items())
    out = {
        "train.json": (
            "the settings before network_args and scripts/networks/losses.py",
            {"_desc_loss_function": losses, "run_config": recorded(settings_of(train))},
        )
    }
    for name in LAYERED_FILES:
        added = [
            k
            for k in load(config_dir / name)
            if "#" not in k and not k.startswith("_") and k not in train and not isinstance(train.get(k), dict)
        ]
        out[name] = ("the settings this file adds to train.json", {f"run_config#{k}": f"@{k}" for k in added})
    out["inference.json"] = (
        "train.json",
        {
            **{k: train[k] for k in SHARED_WITH_INFERENCE},
            **trained_settings(read_by_inference),
            "model_settings": {k: f"@{k}" for k in read_by_inference},
            "preprocessing": {
                "_target_": "Compose",
                "transforms": validation_image_transforms(config_dir / "train.json"),
            },
            "inferer": {**train["validate"]["inferer"], "planes": "@inference_planes", "tta": "@tta"},
        },
    )
    out["evaluate.json"] = (
        "train.json and inference.json",
        {
            **trained_settings(model_keys),
            **{k: inference[k] for k in SHARED_WITH_EVALUATION},
            "+validate#postprocessing#transforms": [inference["largest_component"]],
        },
    )
    return out


def network_data_format(config_dir: Path) -> dict[str, dict]:
    """metadata.json's ``image`` input and ``pred`` output as the shipped model was trained: its channels (one image,
    or ``2k+1`` neighbouring slices in 2.5D; one logit for two classes, else a logit per class in rising value) and a
    spatial shape of its dimensions, each a multiple of the U-Net's total stride."""
    settings = model_settings.read(config_dir.parent / SHIPPED_MODEL)
    network, classes, context = settings["network_args"], settings["label_classes"], int(settings["context_slices"])
    if context:  # as configs/metadata_2.5d.json names them
        inputs = {
            str(i): "slice z (the one predicted)" if i == context else f"slice z{i - context:+d}"
            for i in range(2 * context + 1)
        }
    else:
        inputs = {"0": "image"}
    names = foreground_names(classes) if is_binary(classes) else class_names(classes)
    stride = math.prod(network["strides"])
    shape = [f"{stride}*n"] * int(network["spatial_dims"])
    patches = settings["unet_dimensions"] == "3D"  # a 3D model sees patches, as configs/metadata_3d.json says
    return {
        "image": {
            "num_channels": network["in_channels"],
            "spatial_shape": shape,
            "is_patch_data": patches,
            "channel_def": inputs,
        },
        "pred": {
            "num_channels": network["out_channels"],
            "spatial_shape": shape,
            "is_patch_data": patches,
            "channel_def": {str(i): f"{name} logit" for i, name in enumerate(names)},
        },
    }


def with_derived(config: dict, values: dict, source: str) -> dict:
    """``config`` with ``values`` in place (new keys after the derived key before them, or at the end) and the list
    of derived keys in ``_desc_derived`` (layered files that derive nothing get none)."""
    items = list(config.items())
    result = dict(items)
    for key, value in values.items():
        result[key] = value
    order = [k for k, _ in items]
    previous = None
    for key in values:
        if key not in order:
            order.insert(order.index(previous) + 1 if previous in order else len(order), key)
        previous = key
    result = {k: result[k] for k in order}
    listed = [k for k in values if not k.startswith("_desc_") or k[len("_desc_") :] not in values]
    if listed:
        desc = DERIVED_DESC.format(source=source, keys=", ".join(listed))
        result = {"_desc_derived": desc, **{k: v for k, v in result.items() if k != "_desc_derived"}}
    return result


def stale(config_dir: Path = CONFIG_DIR) -> dict[str, str]:
    """file name -> its text with every derived key up to date, for the files whose text is not."""
    changed = {}
    for name, (source, values) in derived(config_dir).items():
        path = config_dir / name
        text = dump(with_derived(load(path), values, source))
        if text != path.read_text():
            changed[name] = text
    path = config_dir / "metadata.json"
    metadata = load(path)
    described = network_data_format(config_dir)
    metadata["network_data_format"]["inputs"]["image"].update(described["image"])
    metadata["network_data_format"]["outputs"]["pred"].update(described["pred"])
    if dump(metadata) != path.read_text():
        changed[path.name] = dump(metadata)
    doc, _ = settings_doc(config_dir)
    path = config_dir.parent / SETTINGS_DOC
    if not path.is_file() or doc != path.read_text():
        changed[str(Path("..") / SETTINGS_DOC)] = doc
    return changed


SETTINGS_DOC = Path("docs") / "settings.md"  # beside configs/
LIFECYCLE = ("imports", "initialize", "run", "finalize", "process_group_start", "process_group_end")
# inference.json's and evaluate.json's values that are not settings: objects built from the settings, and the
# settings read from the model (one row: trained_settings)
NOT_SETTINGS_OF_RUNS = ("network_def", "network", "model_settings")
SETTINGS_DOC_HEAD = """# Settings

Every setting of the bundle's configs, its default and its meaning. Generated from the configs' `_desc_` keys by
`python -m scripts.tools.derive_configs` (the tests check it): change a description in the config, never here. Any
setting is overridden on the command line (`--epochs 100`); `--help` after `--config_file ...` prints the same list
for those files, and a name that is not a setting is refused with the nearest ones.
"""


def cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell (a ``|`` would end the cell)."""
    return text.replace("|", "\\|")


def shown_default(value) -> str:
    """A default as the config writes it: literals as JSON, ``$`` expressions and ``@`` references as code."""
    text = value[1:] if isinstance(value, str) and value.startswith("$") else value
    text = text if isinstance(text, str) else json.dumps(text)
    return f"`{cell(text)}`" if text else "empty"


def run_settings(config: dict, model_keys: list[str]) -> list[str]:
    """inference.json's or evaluate.json's own settings: top-level values that are not components, steps, objects
    built from the settings, or settings read from the model."""
    return [
        k
        for k, v in config.items()
        if not k.startswith(("_", "+"))
        and "#" not in k
        and k not in (*LIFECYCLE, *NOT_SETTINGS_OF_RUNS, *model_keys)
        and not isinstance(v, dict)
        and not (isinstance(v, list) and any(isinstance(item, dict) for item in v))
    ]


def settings_sections(config_dir: Path) -> list[tuple[str, str, list[tuple[str, object, str]]]]:
    """(title, what it is, [(key, default, description)]) for train.json, its layered files, inference.json and
    evaluate.json; a description is the file's own ``_desc_<key>``, else the one of the file it is layered on."""
    train = load(config_dir / "train.json")
    inference = load(config_dir / "inference.json")
    model_keys = [k for k in train["model_settings"] if k != "label_threshold"]
    sections = [
        ("configs/train.json", "training", [(k, train[k], train.get(f"_desc_{k}", "")) for k in settings_of(train)])
    ]
    for name in LAYERED_FILES:
        layered = load(config_dir / name)
        keys = run_settings(layered, [])
        rows = [(k, layered[k], layered.get(f"_desc_{k}") or train.get(f"_desc_{k}", "")) for k in keys]
        sections.append((f"configs/{name}", str(layered.get("_desc_", "")).split(":")[0], rows))
    trained = ", ".join(f"`{k}`" for k in model_keys)
    rows = [
        (k, inference[k], inference.get(f"_desc_{k}", ""))
        for k in run_settings(inference, [*model_keys, "trained_settings"])
    ]
    rows.append(
        ("trained_settings", inference["trained_settings"], f"{inference['_desc_trained_settings']}: {trained}")
    )
    sections.append(("configs/inference.json", "inference, on its own", rows))
    evaluate = load(config_dir / "evaluate.json")
    keys = [
        k for k in run_settings(evaluate, [*model_keys, "label_threshold", "trained_settings"]) if k != "bundle_root"
    ]  # train.json's
    rows = [(k, evaluate[k], evaluate.get(f"_desc_{k}") or inference.get(f"_desc_{k}", "")) for k in keys]
    sections.append(
        (
            "configs/evaluate.json",
            "evaluation, layered on train.json (it reads the model's settings as inference does)",
            rows,
        )
    )
    return sections


def settings_doc(config_dir: Path) -> tuple[str, list[str]]:
    """docs/settings.md's text, and a line for each setting that has no description."""
    lines, undescribed = [SETTINGS_DOC_HEAD], []
    for title, what, rows in settings_sections(config_dir):
        lines += [
            f"## {title}",
            "",
            f"{what[0].upper()}{what[1:]}." if what else "",
            "",
            "| setting | default | meaning |",
            "| --- | --- | --- |",
        ]
        for key, default, desc in rows:
            if not desc:
                undescribed.append(f"{config_dir / title.split('/')[-1]}: {key} has no _desc_{key}; describe it there")
            lines.append(f"| `{key}` | {shown_default(default)} | {cell(str(desc))} |")
        lines.append("")
    return "\n".join(line for line in lines).rstrip() + "\n", undescribed


def stale_keys(config_dir: Path, name: str, text: str) -> list[str]:
    if not name.endswith(".json"):
        return ["the settings table"]
    before, after = load(config_dir / name), json.loads(text)
    return [k for k in after if before.get(k) != after[k]] or ["(key order)"]


def main(argv: list[str] | None = None) -> int:
    parser = ToolArgumentParser(prog="python -m scripts.tools.derive_configs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a derived key is stale")
    parser.add_argument("--config_dir", type=Path, default=CONFIG_DIR)
    args = parser.parse_args(argv)
    changed = stale(args.config_dir)
    if args.check:
        for name, text in changed.items():
            keys = ", ".join(stale_keys(args.config_dir, name, text))
            print(f"{args.config_dir / name}: {keys} not as derived; run python -m scripts.tools.derive_configs")
    while changed and not args.check:  # a second round carries a copied description into docs/settings.md
        for name, text in changed.items():
            (args.config_dir / name).resolve().write_text(text)
            print(f"wrote {(args.config_dir / name).resolve()}")
        changed = stale(args.config_dir)
    _, undescribed = settings_doc(args.config_dir)
    print("\n".join(undescribed), end="\n" if undescribed else "")
    return 1 if (changed and args.check) or undescribed else 0


if __name__ == "__main__":
    raise SystemExit(main())
