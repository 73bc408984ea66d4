"""Command-line settings checked by name: a misspelled ``--epoch 1`` is refused instead of silently adding a key the
bundle never reads (MONAI's runner takes any ``--key value`` and adds it to the config), and ``--help`` lists the
settings of the configs given instead of being taken for a setting called ``help``."""

from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path
from pydoc import locate

from scripts.common.names import describe, nearest

# what ``python -m monai.bundle run`` takes itself (monai.bundle.scripts.run, create_workflow, ConfigWorkflow)
RUNNER_KEYS = (
    "run_id",
    "init_id",
    "final_id",
    "meta_file",
    "config_file",
    "logging_file",
    "tracking",
    "args_file",
    "workflow_name",
    "workflow_type",
    "properties_path",
)
LIFECYCLE_KEYS = ("imports", "initialize", "run", "finalize")


def merged_config(config_files) -> dict:
    """The config files merged as the runner merges them (later files override, ``a#b`` keys go one level down)."""
    from monai.bundle import ConfigParser

    return ConfigParser.load_config_files(config_files)


def tracking_keys(tracking) -> set[str]:
    """Settings ``--tracking`` adds to the config (``--tracking mlflow`` takes ``--tracking_uri``, ``--run_name``...)."""
    if not tracking:
        return set()
    from monai.bundle.utils import DEFAULT_EXP_MGMT_SETTINGS

    settings = DEFAULT_EXP_MGMT_SETTINGS.get(tracking) if isinstance(tracking, str) else tracking
    return set((settings or {}).get("configs", {})) if isinstance(settings, dict) else set()


def parameters(component: dict) -> set[str] | None:
    """The keyword arguments a component's ``_target_`` takes; ``None`` when any name goes (``**kwargs``) or the
    target cannot be inspected here (the runner reports that itself)."""
    from monai.bundle.config_item import ConfigComponent

    try:
        signature = inspect.signature(locate(ConfigComponent(config=component).resolve_module_name()))
    except Exception:  # not importable or not inspectable: left to the runner
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return None
    return set(signature.parameters)


def unknown_setting(name: str, config: dict, extra: set[str] = frozenset()) -> str | None:
    """One line if ``name`` (an override's key, ``a#b#c`` for nested parts) names nothing in ``config``, else ``None``.

    A nested key may add an argument its component's ``_target_`` takes, or a key to a dict of keyword arguments
    (``network_args``), but not a key to anything else."""
    if name.startswith("_meta_") or name in RUNNER_KEYS or name in extra:
        return None
    parts = name.split("#")
    node, path = config, []
    for part in parts:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node, path = node[int(part)], [*path, part]
        elif isinstance(node, dict) and part in node:
            node, path = node[part], [*path, part]
        else:
            break
    else:
        return None
    last = len(path) == len(parts) - 1
    accepted = set()
    if last and isinstance(node, dict) and path and path[-1].endswith("_args"):
        return None  # a keyword argument the config leaves at its default (``network_args``)
    if last and isinstance(node, dict) and "_target_" in node:
        accepted = parameters(node)
        if accepted is None or part in accepted:
            return None  # an argument of the component the config leaves at its default
    if isinstance(node, dict):
        siblings = sorted({k for k in node if not k.startswith("_")} | accepted)
    else:
        siblings = [str(i) for i in range(len(node))] if isinstance(node, list) else []
    if not path:
        siblings = [k for k in siblings if k not in LIFECYCLE_KEYS] + [*RUNNER_KEYS, *sorted(extra)]
    where = "".join(f"{p}#" for p in path)
    guesses = [f"--{where}{g}" for g in nearest(part, config if not path else {}, siblings)]
    hint = f"did you mean {' or '.join(guesses)}?" if guesses else "--help lists the settings"
    return f"--{name}: no such setting; {hint}"


def check_names(names, config_files, tracking=None) -> None:
    """Exit with status 2 and one line per override in ``names`` that no setting of ``config_files`` has."""
    config, extra = merged_config(config_files), tracking_keys(tracking)
    found = [line for name in names if (line := unknown_setting(str(name), config, extra))]
    if found:
        if os.environ.get("RANK", "0") == "0":  # torchrun: one copy of the message, not one per process
            print("\n".join(found), file=sys.stderr, flush=True)
        raise SystemExit(2)


def shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def help_text(config_files) -> str:
    """The settings of ``config_files``: each with its default and its ``_desc_``; then the sections whose parts
    ``--section#key`` overrides, and the runner's own options."""
    config = merged_config(config_files)
    names = " + ".join(Path(f).name for f in ([config_files] if isinstance(config_files, str) else config_files))
    lines = [f"settings of {names} (override any with --name value):"]
    sections = []
    for key, value in config.items():
        if key.startswith("_") or key in LIFECYCLE_KEYS:
            continue
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict) for v in value)):
            sections.append(key)
            continue
        lines.append(f"  --{key} {shown(value)}")
        if describe(config, key):
            lines.append(f"      {describe(config, key)}")
    lines.append(
        "parts of these, overridden with --section#key value (e.g. --network_args#num_res_units 3): "
        + ", ".join(sections)
    )
    lines.append("MONAI's runner: " + ", ".join(f"--{k}" for k in RUNNER_KEYS) + " (--tracking mlflow adds its own)")
    return "\n".join(lines)


def command_line(argv: list[str]) -> dict | None:
    """``config_file``, ``tracking`` and the overrides of a ``monai.bundle run`` command line, read by Fire as the
    runner reads them (``--learning-rate`` is ``learning_rate``); ``None`` for any other command."""
    import fire

    if len(argv) < 1 or argv[0] != "run":
        return None
    seen = {}

    def run(run_id=None, init_id=None, final_id=None, meta_file=None, config_file=None, **override):
        seen.update(config_file=config_file, tracking=override.pop("tracking", None), override=override)

    try:
        fire.Fire({"run": run}, command=argv, name="monai.bundle")
    except (SystemExit, fire.core.FireExit):
        return None  # the runner's own parser answers that command line
    return seen or None


def started_as_bundle_runner() -> bool:
    """True in ``python -m monai.bundle ...`` (and torchrun of it); False when a tool calls the runner in Python,
    whose own command line is not the bundle's."""
    return Path(sys.argv[0]).parts[-3:] == ("monai", "bundle", "__main__.py")


def check_command_line() -> None:
    """First step of every config's ``initialize``: ``--help`` prints the settings (exit 0); an override that names
    no setting ends the run with status 2 (:func:`check_names`)."""
    if not started_as_bundle_runner():
        return
    parsed = command_line(sys.argv[1:])
    if parsed is None or parsed["config_file"] is None:
        return
    overrides = parsed["override"]
    if overrides.get("help") is True or overrides.get("h") is True:
        print(help_text(parsed["config_file"]), flush=True)
        raise SystemExit(0)
    check_names(overrides, parsed["config_file"], parsed["tracking"])
