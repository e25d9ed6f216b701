"""DreamerV3 actor-critic learned in imagination: λ-returns, percentile return normalisation, slow critic."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch import nn

from lamp.agent.nets import MLP, BoundedNormal, TwoHot, split_grad


def lambda_return(
    reward: torch.Tensor,
    cont: torch.Tensor,
    value: torch.Tensor,
    discount: float,
    lam: float,
) -> torch.Tensor:
    """λ-returns R_t = r_t + γ c_t ((1−λ) v_{t+1} + λ R_{t+1}), bootstrapped with R_H = v_H.

    reward[:, t] and cont[:, t] belong to the transition t -> t+1; value has one more step than reward.
    """
    horizon = reward.shape[1]
    returns = []
    last = value[:, -1]
    for t in reversed(range(horizon)):
        last = reward[:, t] + discount * cont[:, t] * ((1 - lam) * value[:, t + 1] + lam * last)
        returns.append(last)
    return torch.stack(returns[::-1], 1)


def replay_return(
    reward: torch.Tensor,
    is_last: torch.Tensor,
    is_terminal: torch.Tensor,
    boot: torch.Tensor,
    discount: float,
    lam: float,
) -> torch.Tensor:
    """λ-returns of a replayed (B, T) sequence, as the current DreamerV3's replay value loss computes them.

    reward[:, t], is_last[:, t] and is_terminal[:, t] belong to arriving at step t (lamp's replay convention);
    boot[:, t] is the imagined λ-return from the posterior state t. For t < T−1:
        R_t = r_{t+1} + γ (1 − term_{t+1}) [(1 − λ c_{t+1}) boot_{t+1} + λ c_{t+1} R_{t+1}],  c = 1 − is_last,
    with R_{T−1} = boot_{T−1}: an episode's end stops the recursion (bootstrapping from boot there) and a terminal
    step adds nothing after its reward. Returns (B, T−1), for the states 0..T−2.
    """
    live = discount * (1.0 - is_terminal[:, 1:].float())
    cont = lam * (1.0 - is_last[:, 1:].float())
    last = boot[:, -1]
    returns = []
    for t in reversed(range(reward.shape[1] - 1)):
        last = reward[:, t + 1] + live[:, t] * ((1.0 - cont[:, t]) * boot[:, t + 1] + cont[:, t] * last)
        returns.append(last)
    return torch.stack(returns[::-1], 1)


class ReturnNorm(nn.Module):
    """EMA of the 5th and 95th return percentiles; returns are divided by max(1, P95 − P5) (DreamerV3).

    `update` returns the new statistics without storing them: the agent commits them (`commit`) only once the
    step's losses are known to be finite, so one NaN batch cannot poison the normaliser.
    """

    def __init__(self, decay: float = 0.99, lo: float = 0.05, hi: float = 0.95) -> None:
        super().__init__()
        self.decay, self.quantiles = decay, torch.tensor([lo, hi])
        self.register_buffer("low", torch.zeros(()))
        self.register_buffer("high", torch.zeros(()))

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = torch.quantile(returns.detach().float().flatten(), self.quantiles.to(returns.device))
        return self.decay * self.low + (1 - self.decay) * q[0], self.decay * self.high + (1 - self.decay) * q[1]

    @torch.no_grad()
    def commit(self, stats: tuple[torch.Tensor, torch.Tensor]) -> None:
        self.low.copy_(stats[0])
        self.high.copy_(stats[1])

    @staticmethod
    def scale_of(stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return torch.clamp(stats[1] - stats[0], min=1.0)

    def scale(self) -> torch.Tensor:
        return self.scale_of((self.low, self.high))


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Parameters stop collecting gradients while gradients still flow through the modules to their inputs.

    Used when the actor's loss is back-propagated through the world model and critic: only the actor may learn
    from it, and nothing is accumulated into the other modules' .grad.
    """
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class StreamNorm(nn.Module):
    """Divides a reward stream by the EMA of its mean magnitude so blended terms are on a comparable scale."""

    def __init__(self, decay: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__()
        self.decay, self.eps = decay, eps
        self.register_buffer("magnitude", torch.ones(()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised x (keeping its graph) and the new magnitude (committed by the caller after the finite check)."""
        with torch.no_grad():
            magnitude = self.decay * self.magnitude + (1 - self.decay) * x.abs().mean().float()
        return x / (magnitude + self.eps), magnitude

    @torch.no_grad()
    def commit(self, magnitude: torch.Tensor) -> None:
        self.magnitude.copy_(magnitude)


ACTOR_GRADS = ("dynamics", "reinforce")


class ActorCritic(nn.Module):
    """Actor (bounded normal) and two-hot critic with an EMA slow critic used as a regulariser."""

    def __init__(self, cfg, feat_dim: int) -> None:
        super().__init__()
        if cfg.actor_grad not in ACTOR_GRADS:  # checked once here, not on every step
            raise ValueError(f"agent.actor_grad must be one of {ACTOR_GRADS}, got {cfg.actor_grad!r}")
        self.cfg = cfg
        self.actor = MLP(feat_dim, cfg.units, cfg.layers, out=2 * cfg.action_dim, norm=cfg.norm)
        with torch.no_grad():  # small initial outputs (DreamerV3 policy outscale 0.01)
            self.actor.out.weight.mul_(0.01)
            self.actor.out.bias.zero_()
        self.critic = MLP(feat_dim, cfg.units, cfg.layers, out=cfg.bins, norm=cfg.norm, zero_out=True)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.twohot = TwoHot(cfg.bins, space=cfg.twohot)
        self.retnorm = ReturnNorm(cfg.retnorm_decay, cfg.retnorm_lo, cfg.retnorm_hi)

    def dist(self, inp: torch.Tensor) -> BoundedNormal:
        return self.make_dist(self.actor(inp))

    def make_dist(self, actor_out: torch.Tensor) -> BoundedNormal:
        return BoundedNormal(actor_out, self.cfg.min_std, self.cfg.max_std)

    def value(self, inp: torch.Tensor) -> torch.Tensor:
        return self.twohot.mean(self.critic(inp))

    @torch.no_grad()
    def update_slow_critic(self) -> None:
        fraction = self.cfg.slow_critic_fraction
        for slow, fast in zip(self.slow_critic.parameters(), self.critic.parameters(), strict=True):
            slow.lerp_(fast, fraction)

    def loss(
        self,
        inp: torch.Tensor,
        actor_out: torch.Tensor,
        action: torch.Tensor,
        reward: torch.Tensor,
        cont: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], tuple, torch.Tensor]:
        """Actor and critic losses for an imagined trajectory.

        inp: (N, H+1, F) actor/critic inputs; actor_out: (N, H, 2A) actor outputs with their graph; action: (N, H, A)
        sampled actions; reward: (N, H) for t -> t+1; cont: (N, H+1) continue flags, cont[:, 0] from the data.
        With actor_grad "dynamics", inp, action and reward carry the graph back to the actor's earlier outputs and the
        actor maximises the normalised λ-return itself; with "reinforce" they are constants. Also returns the new
        return-normaliser statistics, committed by the caller, and the λ-return of each start state (N,), which
        bootstraps the replay value loss.
        """
        cfg = self.cfg
        dynamics = cfg.actor_grad == "dynamics"
        if dynamics:
            # one critic pass: its first output trains the critic, the second carries the return's gradient to
            # the imagined states (as critic(inp.detach()) and a frozen critic(inp) would, at half the forward cost)
            logits, logits_for_actor = split_grad(self.critic, inp)
            value_grad = self.twohot.mean(logits_for_actor)
        else:
            logits = self.critic(inp.detach())  # values as constants and for the critic loss
        value = self.twohot.mean(logits.detach())
        if dynamics:
            ret = lambda_return(reward, cont[:, 1:], value_grad, cfg.discount, cfg.lam)
        else:
            ret = lambda_return(reward.detach(), cont[:, 1:], value, cfg.discount, cfg.lam)
        # weight of step t: probability the imagined episode is still running there
        weight = torch.cumprod(torch.cat([cont[:, :1], cfg.discount * cont[:, 1:-1]], 1), 1).detach()
        stats = self.retnorm.update(ret.detach())
        scale = self.retnorm.scale_of(stats)
        dist = self.make_dist(actor_out)
        entropy = dist.entropy()
        if dynamics:
            objective = (ret - value[:, :-1]) / scale  # the baseline is a constant: it only centres the logged value
        else:  # REINFORCE with the normalised advantage
            advantage = ((ret - value[:, :-1]) / scale).detach()
            objective = dist.log_prob(action.detach()) * advantage
        actor_loss = -(weight * (objective + cfg.actent * entropy)).mean()
        ret = ret.detach()
        with torch.no_grad():
            slow_value = self.twohot.mean(self.slow_critic(inp[:, :-1].detach()))
        logits = logits[:, :-1]
        critic_loss = self.twohot.loss(logits, ret) + cfg.slowreg * self.twohot.loss(logits, slow_value)
        critic_loss = (weight * critic_loss).mean()
        metrics = {"return": ret.mean(), "entropy": entropy.mean(), "retnorm_scale": scale}
        return actor_loss, critic_loss, metrics, stats, ret[:, 0]

    def replay_loss(
        self,
        inp: torch.Tensor,
        reward: torch.Tensor,
        is_last: torch.Tensor,
        is_terminal: torch.Tensor,
        boot: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The current DreamerV3's replay value loss (`repval`): the critic on the (B, T, F) posterior states also
        regresses the λ-returns of the real replayed rewards (`replay_return`, bootstrapped with the imagined
        returns `boot` (B, T)), plus the slow-critic regulariser; steps that end an episode have no target.

        It ties the critic to returns that were actually collected, which the imagined targets reach only over many
        rounds of bootstrapping. `inp` keeps its graph when `repval_grad` is on (as DreamerV3's default), so the loss
        also shapes the world model's representation. Returns the loss (mean over B, T−1) and the mean target.
        """
        cfg = self.cfg
        ret = replay_return(reward.float(), is_last, is_terminal, boot.detach().float(), cfg.discount, cfg.lam)
        inp = inp[:, :-1] if cfg.repval_grad else inp[:, :-1].detach()
        logits = self.critic(inp)
        with torch.no_grad():
            slow_value = self.twohot.mean(self.slow_critic(inp.detach()))
        loss = self.twohot.loss(logits, ret) + cfg.slowreg * self.twohot.loss(logits, slow_value)
        weight = 1.0 - is_last[:, :-1].float()
        return (weight * loss).mean(), {"replay_return": ret.mean()}
