"""Image / label / prediction panels of the first validation volume in TensorBoard."""

from __future__ import annotations

import torch
from ignite.engine import Engine, Events


def _unit(img: torch.Tensor) -> torch.Tensor:
    low, high = img.min(), img.max()
    return (img - low) / (high - low) if high > low else torch.zeros_like(img)


class ValidationPanels:
    """After each validation's first volume, one picture per view: image | label | prediction side by side,
    at the slice with most foreground and at the middle slice (slices along the last axis of the scan's own
    grid, where label and prediction live), so one glance tells whether the model works."""

    def __init__(self, summary_writer, tag: str = "validation") -> None:
        self.writer, self.tag = summary_writer, tag
        self._pending = False

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._arm)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def _arm(self, engine: Engine) -> None:
        self._pending = True

    def __call__(self, engine: Engine) -> None:
        if not self._pending:
            return
        self._pending = False
        item = engine.state.output[0]
        image, label, pred = (item[k][0].detach().float().cpu() for k in ("image", "label", "pred"))
        most = int(label.sum(dim=(0, 1)).argmax())
        for view, index in (("most_foreground", most), ("middle", label.shape[-1] // 2)):
            panel = torch.cat([_unit(image[..., index]), label[..., index], pred[..., index]], dim=1)
            self.writer.add_image(f"{self.tag}/{view}", panel.clamp(0, 1)[None], engine.state.epoch, dataformats="CHW")
