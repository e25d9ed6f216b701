"""Plan2Explore: an ensemble predicting the next latent; its disagreement is the intrinsic reward.

All K members are one batched computation (weights stacked as (K, in, out), applied with einsum/bmm), so the cost
is a few large matmuls instead of K small ones in a Python loop.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

ACTS = ("silu", "elu")  # agent.expl.act


class Ensemble(nn.Module):
    """K independent MLPs evaluated together: hidden layers Linear -> RMSNorm -> SiLU (`act: silu`, DreamerV3) or
    Linear -> ELU without a norm (`act: elu`, the original's DreamerV2 MLP), then a linear output.

    Initialisation: uniform(±1/sqrt(fan_in)) (torch's Linear); with `act: elu` the hidden layers are Glorot-uniform as
    the original's Keras layers; `out_scale` > 0 draws the output layer with variance scaling (fan_avg, uniform) at
    that scale, the original's 0.1, which starts every member's prediction near zero."""

    def __init__(
        self, members: int, inp: int, units: int, layers: int, out: int, act: str = "silu", out_scale: float = 0.0
    ) -> None:
        super().__init__()
        if act not in ACTS:
            raise ValueError(f"agent.expl.act must be one of {ACTS}, got {act!r}")
        sizes = [inp] + [units] * layers + [out]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.scales = nn.ParameterList()
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            if i == layers and out_scale > 0:
                bound = math.sqrt(3 * out_scale / ((a + b) / 2))
            elif act == "elu":
                bound = math.sqrt(6 / (a + b))
            else:
                bound = 1 / math.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(members, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.zeros(members, 1, b)))
            if i < layers and act == "silu":
                self.scales.append(nn.Parameter(torch.ones(members, 1, b)))
        self.layers, self.act = layers, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, in) shared by all members -> (K, N, out)."""
        members, inp, units = self.weights[0].shape
        # first layer: the input is shared, so all members are one (N, in) @ (in, K·units) GEMM
        w0 = self.weights[0].permute(1, 0, 2).reshape(inp, members * units)
        h = (x @ w0).view(-1, members, units).transpose(0, 1) + self.biases[0]
        for i in range(1, self.layers + 1):
            if self.act == "elu":
                h = torch.nn.functional.elu(h)
            else:
                h = torch.nn.functional.silu(
                    h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-3) * self.scales[i - 1]
                )
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
            act=ecfg.act,
            out_scale=float(ecfg.out_scale),
        )

    def loss(
        self, feat: torch.Tensor, action: torch.Tensor, target: torch.Tensor, is_first: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Σ_k mean over pairs of Σ_d (pred_k − target)² on detached (B, T, ·) tensors, predicting target[:, 1:].

        A replayed sequence may run across an episode boundary: the pair (t, t+1) whose t+1 starts a new episode
        (`is_first`) has no dynamics to learn and is left out (the original trained on it too)."""
        inp = torch.cat([feat[:, :-1], action[:, :-1]], -1).detach()
        inp = inp.reshape(-1, inp.shape[-1])
        goal = target[:, 1:].detach().reshape(1, -1, target.shape[-1])
        pred = self.ensemble(inp)
        error = (pred.float() - goal.float()).pow(2).sum(-1)  # (K, pairs)
        if is_first is None:
            return error.mean(-1).sum()
        keep = 1.0 - is_first[:, 1:].reshape(1, -1).float()
        return ((error * keep).sum(-1) / keep.sum().clamp(min=1.0)).sum()

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
