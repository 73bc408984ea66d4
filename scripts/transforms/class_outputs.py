"""Probabilities from the network's logits and back, for one sigmoid channel (two classes) or a softmax over one
channel per class: what averaging over planes and flips, and saving probabilities, need to do in either case."""

from __future__ import annotations

import torch

EPS = 1e-6


def probabilities(logits: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Foreground probability (one channel along ``dim``) or each class's (several)."""
    return torch.sigmoid(logits) if logits.shape[dim] == 1 else torch.softmax(logits, dim=dim)


def logits_of(probability: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Logits whose :func:`probabilities` are ``probability``: the logit of one channel, the log of several (softmax
    is unchanged by a constant added to every channel, so log-probabilities are logits)."""
    if probability.shape[dim] == 1:
        return torch.logit(probability, eps=EPS)
    return torch.log(probability.clamp_min(EPS))
