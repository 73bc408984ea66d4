"""Refuse a bad configuration with one clear line before any work starts."""

from __future__ import annotations

import json
import math
from functools import lru_cache

from scripts.common.flags import as_bool
from scripts.common.output_space import writable_problem
from scripts.common.paths import BUNDLE_ROOT, MODE_FILES
from scripts.data.cases import DatasetError, folds_problems, split_cases
from scripts.data.data_cache import CACHE_MODES
from scripts.networks.losses import LOSS_NAMES
from scripts.transforms.slice_axis import SLICE_AXES

UNET_DIMENSIONS = ("2D", "2.5D", "3D")
MIN_TRAINING_VOLUMES = 2  # one volume gives the schedule, BatchNorm and early stopping a single case to learn from


@lru_cache(maxsize=1)
def literal_defaults() -> dict:
    """The settings train.json and its mode files write as plain values (numbers, text, booleans, lists)."""
    defaults = {}
    for name in dict.fromkeys(MODE_FILES.values()):
        for key, value in json.loads((BUNDLE_ROOT / name).read_text()).items():
            if "#" in key or key.startswith("_") or isinstance(value, dict) or value is None:
                continue
            if isinstance(value, str) and value.startswith(("$", "@", "%")):
                continue
            if isinstance(value, list) and (not value or any(isinstance(v, str) and v.startswith("$") for v in value)):
                continue  # imports, initialize, run, finalize and the process-group steps
            defaults.setdefault(key, value)
    return defaults


def _type_problem(key: str, value, default) -> str | None:
    """A value of another kind than the default's (``--num_workers two``), one line."""
    if isinstance(default, bool):
        try:
            as_bool(value, key)
        except ValueError as error:
            return str(error)
        return None
    if isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(default, str):
        return None  # names and folders: a number typed for one is fine; the choices are checked above
    else:
        ok, kind = isinstance(value, (list, tuple)), "a list"
    return None if ok else f"{key}={value!r}: must be {kind}, like the default --{key} {json.dumps(default)}"


# every numeric setting of train.json (and its mode files) with the values it may take: (whole number?, lowest,
# highest, lowest excluded?, highest excluded?, an example). A value outside fails later, if at all, with a traceback
# (a DataLoader's for num_workers -3) or silently (a dropout of 1 zeroes the network).
NUMBER_RULES = {
    "epochs": (True, 1, None, False, False, "40"),
    "iterations_per_epoch": (True, 1, None, False, False, "50"),
    "batch_size": (True, 1, None, False, False, "2"),
    "num_workers": (True, 0, None, False, False, "2"),
    "seed": (True, 0, 2**32 - 1, False, False, "42"),
    "val_interval": (True, 1, None, False, False, "2"),
    "slices_per_volume": (True, 1, None, False, False, "16"),
    "patches_per_volume": (True, 1, None, False, False, "2"),
    "foreground_slice_share": (False, 0, 1, False, False, "0.5"),
    "slice_batch": (True, 1, None, False, False, "32"),
    "sw_batch_size": (True, 1, None, False, False, "2"),
    "sw_overlap": (False, 0, 1, False, True, "0.25"),
    "dropout_rate": (False, 0, 1, False, True, "0.1"),
    "bn_calibration_batches": (True, 1, None, False, False, "8"),
    "early_stop_patience": (True, 1, None, False, False, "10"),
    "early_stop_min_delta": (False, 0, None, False, False, "0.001"),
    "ckpt_period": (True, 1, None, False, False, "5"),
    "ckpt_keep": (True, 1, None, False, False, "3"),
}


def _finite(value) -> bool:
    """A real, finite number, whether typed as one or as text (``--label_threshold 128`` may arrive as ``"128"``)."""
    try:
        return not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def number_problem(key: str, value) -> str | None:
    """One line if ``value`` breaks :data:`NUMBER_RULES`' rule for ``key`` (``None`` for keys without one)."""
    if key not in NUMBER_RULES:
        return None
    whole, low, high, low_open, high_open, example = NUMBER_RULES[key]
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = number and (not whole or isinstance(value, int))
    ok = ok and (value > low if low_open else value >= low)
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if ok:
        return None
    kind = "a whole number" if whole else "a number"
    if high is None:
        bounds = f"{'>' if low_open else '>='} {low}"
    else:
        bounds = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    return f"{key}={value!r}: must be {kind} {bounds}, e.g. --{key} {example}"


def numbers_problems(settings: dict) -> list[str]:
    """:func:`number_problem` of every numeric setting in ``settings``, and ``num_folds`` with ``fold``."""
    found = [line for key, value in settings.items() if (line := number_problem(key, value))]
    if "num_folds" in settings or "fold" in settings:
        found += folds_problems(settings.get("num_folds", 0), settings.get("fold", 0))
    return found


def check_numbers(settings: dict) -> None:
    """End the process with one ``configuration error`` line per bad number: for inference and evaluation, whose
    settings are not all of training's."""
    if found := numbers_problems(settings):
        raise SystemExit("configuration error: " + "\n  ".join(found))


def problems_in(settings: dict) -> list[str]:
    """Every problem with the resolved settings, one line each."""
    found = []
    if settings.get("loss_function") not in LOSS_NAMES:
        found.append(f"loss_function={settings.get('loss_function')!r}: use one of {', '.join(LOSS_NAMES)}")
    mode = settings.get("unet_dimensions")
    if mode not in UNET_DIMENSIONS:
        found.append(f"unet_dimensions={mode!r}: use one of {', '.join(UNET_DIMENSIONS)}")
    elif mode != settings.get("layered_mode", mode):
        files = "'configs/train.json'" + ("" if mode == "2D" else f",'{MODE_FILES[mode]}'")
        found.append(f'unet_dimensions={mode!r}: run with --config_file "[{files}]" (the {mode} parts live there)')
    context = settings.get("context_slices", 0)
    if mode == "2.5D" and (not isinstance(context, int) or context < 1):
        found.append(
            f"context_slices={context!r}: 2.5D needs at least 1 neighbour on each side, e.g. --context_slices 2"
        )
    if mode in ("2D", "3D") and context != 0:
        found.append(f"context_slices={context!r}: only used in 2.5D; leave it at 0 for {mode}")
    if "cache" in settings and settings["cache"] not in CACHE_MODES:
        found.append(f"cache={settings['cache']!r}: use one of {', '.join(CACHE_MODES)}, e.g. --cache disk")
    size = settings.get("val_set_size")
    if not isinstance(size, (int, float)) or isinstance(size, bool) or not 0 < size < 1:  # NaN too
        found.append(f"val_set_size={size!r}: must lie strictly between 0 and 1, e.g. --val_set_size 0.2")
    planes = settings.get("training_planes", ["auto"])
    if isinstance(planes, str) or not planes or any(p not in SLICE_AXES for p in planes):
        found.append(
            f"training_planes={planes!r}: a list of {', '.join(SLICE_AXES[1:])} (or ['auto']), "
            "e.g. --training_planes \"['axial','coronal','sagittal']\""
        )
    found += numbers_problems(settings)
    threshold = settings.get("label_threshold")
    if threshold not in (None, "") and not _finite(threshold):
        found.append(f"label_threshold={threshold!r}: a number (foreground = label >= it), e.g. --label_threshold 128")
    spatial = settings.get("spatial_size")
    if not isinstance(spatial, int) or spatial < 16 or spatial % 16:
        found.append(
            f"spatial_size={spatial!r}: the U-Net halves it 4 times; use a multiple of 16, e.g. --spatial_size 128"
        )
    patch = settings.get("patch_size")
    if patch is not None and (
        not isinstance(patch, (list, tuple))
        or len(patch) != 3
        or any(not isinstance(p, int) or p < 16 or p % 16 for p in patch)
    ):
        found.append(f"patch_size={patch!r}: three multiples of 16, e.g. --patch_size [96,96,32]")
    lr, max_lr = settings.get("lr"), settings.get("max_lr")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (lr, max_lr))
    if not numbers or not 0 < lr <= max_lr:
        found.append(f"lr={lr!r}, max_lr={max_lr!r}: need 0 < lr <= max_lr, e.g. --lr 1e-4 --max_lr 1e-3")
    defaults = literal_defaults()
    for key, value in settings.items():  # every other setting: at least of the default's kind
        if key in defaults and not any(line.startswith(f"{key}=") or f", {key}=" in line for line in found):
            if problem := _type_problem(key, value, defaults[key]):
                found.append(problem)
    return found


def check_settings(settings: dict, output_dir: str) -> None:
    """End the process with status 1 and one line per problem (no traceback) if the settings are unusable."""
    found = problems_in(settings)
    if problem := writable_problem(output_dir):
        found.append(problem)
    elif settings.get("cache") == "disk" and settings.get("cache_dir"):
        if problem := writable_problem(settings["cache_dir"], "cache_dir"):
            found.append(problem)
    if found:
        raise SystemExit("configuration error: " + "\n  ".join(found))


def training_split(cases: list[dict], val_set_size, seed, num_folds=0, fold=0) -> tuple[list[dict], list[dict]]:
    """train.json's ``split``: :func:`~scripts.data.cases.split_cases`, ending the process with one ``configuration
    error`` line when the settings cannot split these cases, or leave fewer than :data:`MIN_TRAINING_VOLUMES` to train
    on (``--val_set_size 0.99`` of 5 volumes would train on one, without a word)."""
    try:
        train, validation = split_cases(cases, val_set_size, seed, num_folds, fold)
    except DatasetError as error:
        raise SystemExit(f"configuration error: {error}") from None
    if len(train) < MIN_TRAINING_VOLUMES:
        held_out = f"fold {fold} of --num_folds {num_folds}" if num_folds >= 2 else f"val_set_size={val_set_size}"
        raise SystemExit(
            f"configuration error: {held_out} holds out {len(validation)} of {len(cases)} labelled volume(s), leaving "
            f"{len(train)} to train on; training needs at least {MIN_TRAINING_VOLUMES}: lower --val_set_size (or "
            "--num_folds) or add labelled volumes"
        )
    return train, validation


def check_validation_split(validation_cases: list, world_size: int) -> None:
    """Under DDP every rank must validate at least one volume (metrics are gathered from all ranks)."""
    if len(validation_cases) < world_size:
        raise SystemExit(
            f"configuration error: {len(validation_cases)} validation volume(s) for {world_size} processes; "
            f"raise --val_set_size or use --nproc_per_node {max(1, len(validation_cases))}"
        )
