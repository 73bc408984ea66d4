"""Where the bundle's own files are: the one place that works out the bundle root and the configs folder."""

from __future__ import annotations

from pathlib import Path

BUNDLE_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = BUNDLE_ROOT / "configs"
TRAIN_CONFIG = CONFIG_DIR / "train.json"
INFERENCE_CONFIG = CONFIG_DIR / "inference.json"
EVALUATE_CONFIG = CONFIG_DIR / "evaluate.json"
METADATA = CONFIG_DIR / "metadata.json"
LOGGING = CONFIG_DIR / "logging.conf"
# the files a training mode layers on train.json (2D is train.json alone)
MODE_FILES = {"2D": "configs/train.json", "2.5D": "configs/train_2.5d.json", "3D": "configs/train_3d.json"}
