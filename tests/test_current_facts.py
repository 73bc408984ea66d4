"""What the metadata and the docs say is what is true now, and the docs' commands work from the repository offline."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

from scripts.tools.prepare_real_t1 import MASK_RULE
from tests.conftest import BUNDLE

NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}


def test_metadata_and_model_card_name_the_sources_the_model_was_trained_on():
    trained_on = sorted(source for source, rule in MASK_RULE.items() if rule)
    description = json.loads((BUNDLE / "configs" / "metadata.json").read_text())["description"]
    counts = {NUMBERS[w] for w in re.findall(r"\b(\w+) public sources", description) if w in NUMBERS}
    assert counts == {len(trained_on)}, description
    card = (BUNDLE / "docs" / "README.md").read_text()
    assert f"trained on {list(NUMBERS)[len(trained_on) - 2]} sources" in card
    shipped = json.loads((BUNDLE / "models" / "model.json").read_text())["trained_on"]
    assert sorted(s for s in MASK_RULE if s in shipped) == trained_on


def test_the_model_cards_verify_metadata_command_works_offline_from_the_repository():
    card = (BUNDLE / "docs" / "README.md").read_text()
    command = re.search(r"^python -m monai\.bundle verify_metadata .*$", card, re.MULTILINE).group(0)
    args = shlex.split(command)
    schema = (BUNDLE / args[args.index("--filepath") + 1]).resolve()
    assert schema.is_file() and schema.is_relative_to(BUNDLE), schema  # kept in the repository: no download
    result = subprocess.run([sys.executable, *args[1:]], cwd=BUNDLE, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "metadata is verified with no error" in result.stdout + result.stderr


def test_inference_on_a_fresh_clone_without_demo_data_says_what_to_pass(tmp_path):
    from tests.conftest import INFERENCE_CONFIG, run_bundle

    ckpt = str(BUNDLE / "models" / "model.pt")
    result = run_bundle(["--config_file", INFERENCE_CONFIG, "--bundle_root", str(tmp_path), "--ckpt_path", ckpt])
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(
        f"input error: {tmp_path / 'demo_data' / 'imagesTr'}: no such file or folder; set --dataset_dir"
    )
