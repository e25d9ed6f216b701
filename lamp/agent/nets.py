"""Building blocks shared by the world model, actor-critic and explorer (DreamerV3 conventions).

symlog/symexp squash targets of unknown scale; two-hot heads regress them without caring about their magnitude;
every hidden layer is Linear/Conv -> norm -> SiLU as in DreamerV3, with one learnable shift per unit: the Linear/Conv
bias before RMSNorm (current DreamerV3) or LayerNorm's offset (DreamerV3 2023, no Linear bias).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x)·log(1+|x|): compresses large magnitudes while staying linear near zero."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    """Inverse of symlog."""
    return torch.sign(x) * torch.expm1(x.abs())


TWOHOT_SPACES = ("symlog", "symexp")


class TwoHot(nn.Module):
    """Categorical regression over 255 bins, in one of two placements (`agent.twohot`):

    - "symlog" (DreamerV3 2023): bins evenly spaced in symlog space over [-20, 20]; the target is two-hot between the
      neighbours of symlog(y) and the prediction is symexp(Σ p_i b_i).
    - "symexp" (current DreamerV3, `symexp_twohot`): bins placed at symexp of a symmetric grid over [-20, 20], i.e.
      in raw space; the target is two-hot between the neighbours of y itself and the prediction is Σ p_i b_i.
      The sum pairs each bin with its mirror image, so symmetric probabilities (e.g. the zero-initialised head's
      uniform ones) give exactly 0 despite bins of ±5e8.
    Either way decoding a two-hot target gives y back (up to float rounding in raw space).
    """

    def __init__(self, bins: int = 255, low: float = -20.0, high: float = 20.0, space: str = "symlog") -> None:
        super().__init__()
        if space not in TWOHOT_SPACES:
            raise ValueError(f"agent.twohot must be one of {TWOHOT_SPACES}, got {space!r}")
        self.space = space
        if space == "symlog":
            grid = torch.linspace(low, high, bins)
        else:  # symmetric by construction: exact 0 in the middle (odd counts) and exact mirror images
            half = symexp(torch.linspace(-max(-low, high), 0.0, (bins + 1) // 2))
            grid = torch.cat([half, -half.flip(0)[bins % 2 :]])
        self.register_buffer("bins", grid, persistent=False)

    def _squash(self, x: torch.Tensor) -> torch.Tensor:
        return symlog(x) if self.space == "symlog" else x

    def encode(self, target: torch.Tensor) -> torch.Tensor:
        """(...,) real targets -> (..., bins) two-hot weights."""
        bins = self.bins
        x = self._squash(target).clamp(bins[0], bins[-1])
        below = ((bins <= x.unsqueeze(-1)).sum(-1) - 1).clamp(0, len(bins) - 1)
        above = (below + 1).clamp(0, len(bins) - 1)
        dist_below = (x - bins[below]).abs()
        dist_above = (bins[above] - x).abs()
        total = dist_below + dist_above
        same = total == 0
        weight_below = torch.where(same, torch.full_like(x, 0.5), dist_above / torch.where(same, 1.0, total))
        weight_above = 1.0 - weight_below
        out = torch.zeros(*x.shape, len(bins), device=x.device, dtype=x.dtype)
        out.scatter_add_(-1, below.unsqueeze(-1), weight_below.unsqueeze(-1))
        out.scatter_add_(-1, above.unsqueeze(-1), weight_above.unsqueeze(-1))
        return out

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., bins) logits -> (...,) expected value in the original scale."""
        probs = logits.float().softmax(-1)
        if self.space == "symlog":
            return symexp((probs * self.bins).sum(-1))
        n = len(self.bins)
        m = n // 2  # pairs (i, n-1-i) summed innermost first, plus the middle bin (0 for odd counts)
        paired = probs[..., :m].flip(-1) * self.bins[:m].flip(-1) + probs[..., n - m :] * self.bins[n - m :]
        middle = (probs[..., m : n - m] * self.bins[m : n - m]).sum(-1)
        return paired.sum(-1) + middle

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy between the two-hot target and the predicted bin distribution, shape (...,)."""
        return -(self.encode(target.detach().float()) * logits.float().log_softmax(-1)).sum(-1)


class RMSNorm(nn.RMSNorm):
    """RMSNorm that casts its scale to the input dtype, so bf16 autocast keeps the fused kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight.to(x.dtype), self.eps)


def hidden_bias(norm: str) -> bool:
    """Whether a Linear/Conv followed by this norm needs its own bias: RMSNorm has no shift, LayerNorm has one."""
    return norm == "rms"


def make_norm(kind: str, dim: int) -> nn.Module:
    """RMSNorm or LayerNorm over the last dim (eps 1e-3 as DreamerV3)."""
    if kind == "rms":
        return RMSNorm(dim, eps=1e-3)
    if kind == "layer":
        return nn.LayerNorm(dim, eps=1e-3)
    raise ValueError(f"agent.norm must be 'rms' or 'layer', got {kind!r}")


class MLP(nn.Module):
    """layers × (Linear -> norm -> SiLU), optionally followed by a linear output layer."""

    def __init__(
        self,
        inp: int,
        units: int,
        layers: int,
        out: int | None = None,
        norm: str = "rms",
        zero_out: bool = False,
    ) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        for i in range(layers):
            mods += [
                nn.Linear(inp if i == 0 else units, units, bias=hidden_bias(norm)),
                make_norm(norm, units),
                nn.SiLU(),
            ]
        self.hidden = nn.Sequential(*mods)
        self.out = None
        if out is not None:
            self.out = nn.Linear(units if layers else inp, out)
            if zero_out:  # reward and critic heads start predicting exactly 0 (DreamerV3)
                nn.init.zeros_(self.out.weight)
                nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (..., inp) as one 2-D matrix: a compiled 3-D (or sliced) input would otherwise become a batched matmul
        lead = x.shape[:-1]
        x = self.hidden(x.reshape(-1, x.shape[-1]))
        x = self.out(x) if self.out is not None else x
        return x.reshape(*lead, x.shape[-1])


class _SplitGrad(torch.autograd.Function):
    """Runs a module once and returns its output twice: gradients arriving at the first copy reach only the
    module's parameters, gradients at the second only its input (see `split_grad`)."""

    @staticmethod
    def forward(ctx, module: nn.Module, x: torch.Tensor, *params: torch.Tensor):
        with torch.enable_grad():  # an inner graph on the real parameters, differentiated in backward
            inner = x.detach().requires_grad_(ctx.needs_input_grad[1])
            if inner.requires_grad:  # a non-leaf, so module hooks (e.g. FlopCounterMode's) accept autograd.grad
                inner = inner.view_as(inner)
            out = module(inner)
        ctx.inner = (inner, out, params)
        return out.detach(), out.detach().clone()

    @staticmethod
    def backward(ctx, grad_params: torch.Tensor | None, grad_input: torch.Tensor | None):
        inner, out, params = ctx.inner
        del ctx.inner
        wanted = [p for p, need in zip(params, ctx.needs_input_grad[2:], strict=True) if need]
        param_grads = iter(())
        if wanted and grad_params is not None:
            retain = grad_input is not None and inner.requires_grad
            param_grads = iter(torch.autograd.grad(out, wanted, grad_params, retain_graph=retain, allow_unused=True))
        x_grad = None
        if grad_input is not None and inner.requires_grad:
            (x_grad,) = torch.autograd.grad(out, [inner], grad_input)
        grads = [next(param_grads, None) if need else None for need in ctx.needs_input_grad[2:]]
        return None, x_grad, *grads


def split_grad(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """module(x) evaluated once, as two outputs with separate gradient routes: (for the parameters, for the input).

    The critic's loss must train only the critic, and the actor's λ-return must reach the imagined states but not
    the critic: instead of evaluating the critic twice (once on detached states, once with frozen parameters),
    both uses share one forward pass; the backward costs the same as for the two evaluations.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    if not torch.is_grad_enabled() or not (params or x.requires_grad):
        out = module(x)
        return out, out
    return _SplitGrad.apply(module, x, *params)


class ChannelNorm(nn.Module):
    """Norm over the channel axis of an NCHW tensor, i.e. per pixel, as DreamerV3's conv layers do."""

    def __init__(self, kind: str, channels: int) -> None:
        super().__init__()
        self.norm = make_norm(kind, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def conv_stages(resolution: int, min_resolution: int = 4) -> int:
    """Number of stride-2 stages from `resolution` down to `min_resolution` (64 -> 4 is 4 stages)."""
    stages = round(math.log2(resolution / min_resolution))
    if min_resolution * 2**stages != resolution:
        raise ValueError(f"image size {resolution} must be {min_resolution}·2^k")
    return stages


class ConvEncoder(nn.Module):
    """uint8 images (N, H, W, C) -> flat features; channels depth·(1, 2, 4, 8), kernel 4, stride 2."""

    def __init__(
        self,
        channels: int,
        resolution: int,
        depth: int,
        norm: str = "rms",
        kernel: int = 4,
    ) -> None:
        super().__init__()
        stages = conv_stages(resolution)
        mods: list[nn.Module] = []
        inp = channels
        for i in range(stages):
            out = depth * 2**i
            mods += [
                nn.Conv2d(inp, out, kernel, 2, padding=(kernel - 2) // 2, bias=hidden_bias(norm)),
                ChannelNorm(norm, out),
            ]
            mods.append(nn.SiLU())
            inp = out
        self.net = nn.Sequential(*mods)
        self.out_dim = inp * 4 * 4
        self.channels_last = False

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x).flatten(1)


class ConvDecoder(nn.Module):
    """Features -> image mean in [−0.5, 0.5] offset space (N, H, W, C), mirror of ConvEncoder."""

    def __init__(
        self,
        feat: int,
        channels: int,
        resolution: int,
        depth: int,
        norm: str = "rms",
        kernel: int = 4,
    ):
        super().__init__()
        stages = conv_stages(resolution)
        self.top = depth * 2 ** (stages - 1)
        self.linear = nn.Linear(feat, self.top * 16)
        mods: list[nn.Module] = []
        inp = self.top
        for i in reversed(range(stages)):
            last = i == 0
            out = channels if last else depth * 2 ** (i - 1)
            bias = last or hidden_bias(norm)
            mods.append(nn.ConvTranspose2d(inp, out, kernel, 2, padding=(kernel - 2) // 2, bias=bias))
            if not last:
                mods += [ChannelNorm(norm, out), nn.SiLU()]
            inp = out
        self.net = nn.Sequential(*mods)
        self.channels_last = False

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        x = self.linear(feat).reshape(-1, self.top, 4, 4)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x).permute(0, 2, 3, 1)


class BoundedNormal:
    """Continuous action distribution of DreamerV3: Normal(tanh(μ), std) with std in [min_std, max_std].

    The mean stays in [−1, 1]; a sample can leave the box, so imagination bounds it with `clip_action` (the replay
    only holds actions the environment executed, all inside [−1, 1]).
    """

    def __init__(self, out: torch.Tensor, min_std: float = 0.1, max_std: float = 1.0) -> None:
        mean, std = out.float().chunk(2, -1)
        self.mean = torch.tanh(mean)
        self.std = (max_std - min_std) * torch.sigmoid(std + 2.0) + min_std

    def sample(self, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Reparameterised sample; `noise` is standard normal of the mean's shape (drawn here if not given)."""
        return self.mean + self.std * (torch.randn_like(self.mean) if noise is None else noise)

    def mode(self) -> torch.Tensor:
        return self.mean

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        return (-0.5 * z**2 - self.std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self) -> torch.Tensor:
        return (0.5 + 0.5 * math.log(2 * math.pi) + self.std.log()).sum(-1)


def clip_action(action: torch.Tensor) -> torch.Tensor:
    """Clip to the action box [−1, 1] with a straight-through gradient (DreamerV3 2023).

    The world model and the ensemble only ever saw in-box actions; the identity gradient keeps the actor learning
    from the return even where the clip is active.
    """
    return action + (action.clamp(-1.0, 1.0) - action).detach()
