"""scripts/tools/derive_configs.py: the configs' derived keys are up to date, and a hand edit is caught and fixed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from monai.bundle import ConfigParser

from tests.conftest import BUNDLE


def derive(config_dir, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.tools.derive_configs", "--config_dir", str(config_dir), *args],
        cwd=BUNDLE,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_shipped_configs_are_as_derived():
    result = derive(BUNDLE / "configs", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_edit_of_the_source_is_caught_then_carried_to_every_copy(tmp_path):
    configs = shutil.copytree(BUNDLE / "configs", tmp_path / "configs")
    shutil.copytree(BUNDLE / "docs", tmp_path / "docs")
    train = json.loads((configs / "train.json").read_text())
    train["network_def"] = "$monai.networks.nets.BasicUNet(**@network_args)"
    train["validate"]["preprocessing"]["transforms"][1]["axcodes"] = "LPS"
    items = list(train.items())  # a new setting, described, before the model part
    at = [k for k, _ in items].index("network_args")
    train = dict(items[:at] + [("_desc_new_setting", "a new knob"), ("new_setting", 3)] + items[at:])
    train["_desc_slice_batch"] = "slices per pass, said anew"
    (configs / "train.json").write_text(json.dumps(train, indent=4) + "\n")
    untouched = (configs / "metadata.json").read_text()

    check = derive(configs, "--check")
    assert check.returncode == 1 and check.stderr == ""
    lines = check.stdout.splitlines()
    assert any(line.startswith(f"{configs / 'train.json'}: ") and "run_config" in line for line in lines), lines
    assert any(line.startswith(f"{configs / '..' / 'docs' / 'settings.md'}: the settings table") for line in lines)
    inference_line = next(line for line in lines if line.startswith(f"{configs / 'inference.json'}: "))
    assert "network_def" in inference_line and "preprocessing" in inference_line and "derive_configs" in inference_line
    assert not any("evaluate.json" in line for line in lines)  # nothing it derives changed

    assert derive(configs).returncode == 0
    assert derive(configs, "--check").returncode == 0
    inference = json.loads((configs / "inference.json").read_text())
    assert inference["network_def"] == train["network_def"]
    assert [t["axcodes"] for t in inference["preprocessing"]["transforms"] if "axcodes" in t] == ["LPS"]
    assert all(t["keys"] == "image" for t in inference["preprocessing"]["transforms"])
    assert json.loads((configs / "train.json").read_text())["run_config"]["new_setting"] == "@new_setting"
    assert (configs / "metadata.json").read_text() == untouched
    table = (tmp_path / "docs" / "settings.md").read_text()
    assert "| `new_setting` | `3` | a new knob |" in table
    assert table.count("slices per pass, said anew") == 2  # train.json's row and inference.json's, copied there
    # what it wrote still parses, and inference's preprocessing resolves to train.json's validation (image part)
    parser = ConfigParser()
    parser.read_config(str(configs / "inference.json"))
    assert parser.get_parsed_content("preprocessing#transforms#0#keys") == "image"


def test_settings_a_layered_file_adds_are_recorded(tmp_path):
    configs = shutil.copytree(BUNDLE / "configs", tmp_path / "configs")
    layered = json.loads((configs / "train_3d.json").read_text())
    layered["patches_per_volume_min"] = 1
    (configs / "train_3d.json").write_text(json.dumps(layered, indent=4) + "\n")
    assert derive(configs, "--check").returncode == 1
    derive(configs)
    written = json.loads((configs / "train_3d.json").read_text())
    assert written["run_config#patches_per_volume_min"] == "@patches_per_volume_min"
    assert written["run_config#patches_per_volume"] == "@patches_per_volume"


def test_a_setting_without_a_description_is_refused(tmp_path):
    configs = shutil.copytree(BUNDLE / "configs", tmp_path / "configs")
    shutil.copytree(BUNDLE / "docs", tmp_path / "docs")
    inference = json.loads((configs / "inference.json").read_text())
    del inference["_desc_overwrite"]
    (configs / "inference.json").write_text(json.dumps(inference, indent=4) + "\n")
    for args in ((), ("--check",)):
        result = derive(configs, *args)
        assert result.returncode == 1, result.stdout
        assert f"{configs / 'inference.json'}: overwrite has no _desc_overwrite; describe it there" in result.stdout
