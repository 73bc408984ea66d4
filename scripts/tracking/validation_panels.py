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
    grid, where label and prediction live), so one glance tells whether the model works. Label maps of several
    classes are drawn in colour, a colour per class."""

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
        image, label, pred = (item[k].detach().float().cpu() for k in ("image", "label", "pred"))
        image, label = image[0], label[0]
        classes = pred.shape[0]
        pred = pred.argmax(dim=0).float() if classes > 1 else pred[0]  # one-hot (several classes) -> indices
        most = int((label > 0).sum(dim=(0, 1)).argmax())
        for view, index in (("most_foreground", most), ("middle", label.shape[-1] // 2)):
            grey = _unit(image[..., index])
            if classes == 1:
                panel = torch.cat([grey, label[..., index], pred[..., index]], dim=1).clamp(0, 1)[None]
            else:  # each class its own colour, so classes that touch can be told apart
                panel = torch.cat(
                    [grey.expand(3, *grey.shape), coloured(label[..., index]), coloured(pred[..., index])], dim=2
                )
            self.writer.add_image(f"{self.tag}/{view}", panel, engine.state.epoch, dataformats="CHW")


# class index -> RGB: background black, then distinct hues (tab10's order)
PALETTE = (
    torch.tensor(
        [
            [0, 0, 0],
            [31, 119, 180],
            [255, 127, 14],
            [44, 160, 44],
            [214, 39, 40],
            [148, 103, 189],
            [140, 86, 75],
            [227, 119, 194],
            [127, 127, 127],
            [188, 189, 34],
            [23, 190, 207],
        ],
        dtype=torch.float32,
    )
    / 255.0
)


def coloured(indices: torch.Tensor) -> torch.Tensor:
    """``[H, W]`` class indices -> ``[3, H, W]`` colours (the palette repeats after 10 classes)."""
    index = indices.long()
    return PALETTE[torch.where(index > 0, (index - 1) % (len(PALETTE) - 1) + 1, 0)].permute(2, 0, 1)
