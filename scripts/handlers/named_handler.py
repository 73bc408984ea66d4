"""A handler the config defines under its own name (``early_stopping``, ``checkpoints``, ``tracking``), placed in a
handler list: MONAI's property check and ``--tracking`` read ``train#handlers`` as components (dicts with a
``_target_``), so a bare ``"@early_stopping"`` cannot stand in the list."""

from __future__ import annotations

from ignite.engine import Engine


class NamedHandler:
    """Attaches ``handler`` where this entry stands in the list, so the list keeps the order handlers run in."""

    def __init__(self, handler) -> None:
        self.handler = handler

    def attach(self, engine: Engine) -> None:
        self.handler.attach(engine)
