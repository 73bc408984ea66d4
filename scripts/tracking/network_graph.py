"""The network in TensorBoard's GRAPHS tab."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events

from scripts.networks.placement import unwrap

logger = logging.getLogger(__name__)


def first_input(output) -> torch.Tensor:
    """One item of the network's input in a trainer's iteration output (a dict, or a decollated list of dicts), as
    a plain tensor ``[1, C, *spatial]``."""
    image = output["image"][:1] if isinstance(output, dict) else output[0]["image"][None]
    return torch.as_tensor(image.as_tensor() if hasattr(image, "as_tensor") else image).detach()


class NetworkGraph:
    """After the first training iteration, the network traced once with one item of that iteration's input, so the
    graph has the run's own shapes (a 2D or 2.5D slice ``[1, C, H, W]``, a 3D patch ``[1, 1, H, W, D]``), and written
    to ``summary_writer`` (TensorBoard's GRAPHS tab).

    The trace runs in eval mode without gradients, so BatchNorm's running statistics and the weights are untouched
    and training goes on as without it; every module's mode is put back afterwards. A network ``torch.jit`` cannot
    trace costs one warning line (torch's own printout and trace warnings are held back) and training goes on.
    Under DDP the bare module is traced, on rank 0 only: it alone writes event files."""

    def __init__(self, summary_writer, network: torch.nn.Module) -> None:
        self.writer, self.network = summary_writer, network
        self.done = False

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if self.done:
            return
        self.done = True  # once, also if it fails
        if idist.get_rank() != 0:
            return
        model = unwrap(self.network)
        modes = [(module, module.training) for module in model.modules()]
        try:
            model.eval()
            with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")  # torch.jit's deprecation and tracer warnings: about the trace only
                self.writer.add_graph(model, first_input(engine.state.output))
        except Exception as error:  # whatever the tracer raises, training goes on without the graph
            reason = (str(error).strip().splitlines() or [""])[0][:200]
            logger.warning(
                "TensorBoard graph not written: %s cannot be traced (%s: %s)",
                type(model).__name__,
                type(error).__name__,
                reason,
            )
        finally:
            for module, training in modes:
                module.train(training)
