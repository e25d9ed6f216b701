"""Plan2Explore: an ensemble predicting the next latent; its disagreement is the intrinsic reward.

All K members are one batched computation (weights stacked as (K, in, out), applied with einsum/bmm), so the cost
is a few large matmuls instead of K small ones in a Python loop.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


class Ensemble(nn.Module):
    """K independent MLPs (Linear -> RMSNorm -> SiLU per layer, linear output) evaluated together."""

    def __init__(self, members: int, inp: int, units: int, layers: int, out: int) -> None:
        super().__init__()
        sizes = [inp] + [units] * layers + [out]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.scales = nn.ParameterList()
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            bound = 1 / math.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(members, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.zeros(members, 1, b)))
            if i < layers:
                self.scales.append(nn.Parameter(torch.ones(members, 1, b)))
        self.layers = layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, in) shared by all members -> (K, N, out)."""
        members, inp, units = self.weights[0].shape
        # first layer: the input is shared, so all members are one (N, in) @ (in, K·units) GEMM
        w0 = self.weights[0].permute(1, 0, 2).reshape(inp, members * units)
        h = (x @ w0).view(-1, members, units).transpose(0, 1) + self.biases[0]
        for i in range(1, self.layers + 1):
            h = torch.nn.functional.silu(h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-3) * self.scales[i - 1])
            h = torch.baddbmm(self.biases[i], h, self.weights[i])
        return h


class Explorer(nn.Module):
    """Predicts the posterior target at t+1 from (feat_t, a_t); a_t is the action taken at t, so no misalignment."""

    def __init__(self, cfg, feat_dim: int, target_dims: dict[str, int]) -> None:
        super().__init__()
        ecfg = cfg.expl
        if ecfg.target not in target_dims:
            raise ValueError(f"agent.expl.target must be one of {sorted(target_dims)}, got {ecfg.target!r}")
        self.target = ecfg.target
        self.ensemble = Ensemble(
            ecfg.members,
            feat_dim + cfg.action_dim,
            ecfg.units,
            ecfg.layers,
            target_dims[ecfg.target],
        )

    def loss(self, feat: torch.Tensor, action: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Σ_k mean_{B,T} Σ_d (pred_k − target)² on detached (B, T, ·) tensors, predicting target[:, 1:]."""
        inp = torch.cat([feat[:, :-1], action[:, :-1]], -1).detach()
        inp = inp.reshape(-1, inp.shape[-1])
        goal = target[:, 1:].detach().reshape(1, -1, target.shape[-1])
        pred = self.ensemble(inp)
        return (pred.float() - goal.float()).pow(2).sum(-1).mean(-1).sum()

    def disagreement(self, feat: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Mean over dims of the population std across members, shape feat.shape[:-1].

        Differentiable w.r.t. feat and action, so the actor can follow it through the dynamics; callers that do not
        need that run it under no_grad (and freeze the ensemble when they do).
        """
        inp = torch.cat([feat, action], -1)
        pred = self.ensemble(inp.reshape(-1, inp.shape[-1])).float()
        # population std over members; written as sums over the leading axis, which is much faster than
        # torch.std(dim=0) on CPU
        var = (pred - pred.mean(0)).square().mean(0)
        return (var + 1e-16).sqrt().mean(-1).reshape(feat.shape[:-1])
