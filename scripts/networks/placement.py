"""Where a network lives: its device, the memory layout its convolutions run fastest in, and the bare module inside a
DDP wrapper."""

from __future__ import annotations

import torch


def place(network: torch.nn.Module, device) -> torch.nn.Module:
    """``network.to(device)``, in channels-last layout when its weights are at most 4D (2D and 2.5D U-Nets): PyTorch's
    CPU convolutions take 0.70 instead of 0.89 s for a 32-slice training step at 128x128 on 2 threads, and CUDA's
    tensor cores prefer it too. 3D networks keep the default layout (channels-last 3D is a different format)."""
    if any(p.ndim > 4 for p in network.parameters()):
        return network.to(device)
    return network.to(device, memory_format=torch.channels_last)


def unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The bare network inside a DistributedDataParallel/DataParallel wrapper."""
    return network.module if hasattr(network, "module") else network
