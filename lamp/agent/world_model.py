"""DreamerV3 world model: encoder, RSSM with discrete latents, decoder, reward and continue heads.

Replay convention (danijar/dreamerv3): step t holds observation o_t, the reward and flags of arriving at o_t, and the
action a_t chosen at o_t. The RSSM therefore reaches state t with the previous action a_{t-1}.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lamp.agent.config import to_cfg
from lamp.agent.nets import MLP, ConvDecoder, ConvEncoder, TwoHot, hidden_bias, make_norm, symlog


def obs_space_from(sample: dict[str, Any], cfg) -> dict[str, tuple[int, ...]]:
    """Shapes of the observation keys the agent uses, from one step of data (leading dims ignored by caller)."""
    return {k: tuple(sample[k].shape) for k in (*cfg.image_keys, *cfg.vector_keys) if k in sample}


class RSSM(nn.Module):
    """Recurrent state-space model: GRU deterministic state + stoch × classes categorical latents (1% unimix)."""

    def __init__(self, cfg, embed_dim: int, action_dim: int) -> None:
        super().__init__()
        self.stoch, self.classes, self.deter, self.unimix = (
            cfg.stoch,
            cfg.classes,
            cfg.deter,
            cfg.unimix,
        )
        latent = cfg.stoch * cfg.classes
        bias = hidden_bias(cfg.norm)  # a learnable shift per unit, before RMSNorm (LayerNorm has its own)
        self.img_in = nn.Sequential(
            nn.Linear(latent + action_dim, cfg.hidden, bias=bias),
            make_norm(cfg.norm, cfg.hidden),
        )
        self.gru = nn.Linear(cfg.hidden + cfg.deter, 3 * cfg.deter, bias=bias)
        self.gru_norm = make_norm(cfg.norm, 3 * cfg.deter)
        self.prior = MLP(cfg.deter, cfg.hidden, 1, out=latent, norm=cfg.norm)
        # posterior layer on concat(deter, embed), split so the embed part is computed for all steps at once
        self.obs_deter = nn.Linear(cfg.deter, cfg.hidden, bias=False)
        self.obs_embed = nn.Linear(embed_dim, cfg.hidden, bias=bias)  # one bias for the sum of both parts
        self.obs_norm = make_norm(cfg.norm, cfg.hidden)
        self.post = nn.Linear(cfg.hidden, latent)
        self.steps: dict[str, Any] = {}  # compiled step functions by name (empty: eager), see Agent.compile_steps

    @property
    def feat_dim(self) -> int:
        return self.stoch * self.classes + self.deter

    def initial(self, batch: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        return {
            "stoch": torch.zeros(batch, self.stoch * self.classes, device=device),
            "deter": torch.zeros(batch, self.deter, device=device),
        }

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """(..., stoch·classes) logits -> (..., stoch, classes) probabilities mixed with 1% uniform."""
        probs = logits.float().unflatten(-1, (self.stoch, self.classes)).softmax(-1)
        return (1 - self.unimix) * probs + self.unimix / self.classes

    def sample(self, logits: torch.Tensor, uniform: torch.Tensor | None = None) -> torch.Tensor:
        """One-hot sample with straight-through gradients, flattened to (..., stoch·classes).

        Inverse-CDF sampling needs one uniform number per latent instead of one per class (Gumbel-max). `uniform`
        (..., stoch, 1) may be drawn by the caller, so a compiled step and the eager one consume the same random
        numbers (and a whole rollout draws its noise in one call).
        """
        probs = self.probs(logits)
        if uniform is None:
            uniform = torch.rand(*probs.shape[:-1], 1, device=probs.device)
        index = (probs.cumsum(-1) < uniform).sum(-1).clamp(max=self.classes - 1)
        onehot = F.one_hot(index, self.classes).to(probs.dtype)
        return (onehot + probs - probs.detach()).flatten(-2)

    def noise(self, *lead: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Uniform numbers for `sample` at every latent of a (*lead) batch of steps."""
        return torch.rand(*lead, self.stoch, 1, device=device)

    def img_step(self, stoch: torch.Tensor, deter: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Next deterministic state from the previous latent and action (LayerNorm'd GRU, update bias −1)."""
        x = F.silu(self.img_in(torch.cat([stoch, action], -1)))
        parts = self.gru_norm(self.gru(torch.cat([x, deter], -1)))
        reset, cand, update = parts.chunk(3, -1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1.0)
        return update * cand + (1 - update) * deter

    def imagine_step(
        self, stoch: torch.Tensor, deter: torch.Tensor, action: torch.Tensor, uniform: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior step: next (stoch, deter) from the previous latent and action."""
        deter = self.img_step(stoch, deter, action)
        return self.sample(self.prior(deter), uniform), deter

    def obs_step(
        self,
        stoch: torch.Tensor,
        deter: torch.Tensor,
        action: torch.Tensor,
        keep: torch.Tensor,
        embed_part: torch.Tensor,
        uniform: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posterior step: (deter, post logits, stoch) at t from the state at t−1, a_{t−1} and obs_embed(embed_t).

        keep (B, 1) is 0 where an episode starts, which resets the previous latent and action.
        """
        deter = self.img_step(stoch * keep, deter * keep, action * keep)
        logits = self.post(F.silu(self.obs_norm(self.obs_deter(deter) + embed_part)))
        return deter, logits, self.sample(logits, uniform)

    def observe(
        self,
        embed: torch.Tensor,
        prev_action: torch.Tensor,
        is_first: torch.Tensor,
        state: dict | None = None,
    ) -> dict[str, torch.Tensor]:
        """Posterior rollout over (B, T); is_first resets latent and previous action to zero.

        The step runs through `self.steps["obs"]`: the eager `obs_step`, or its compiled form (`agent.compile`).
        """
        batch, length = embed.shape[:2]
        state = state or self.initial(batch, embed.device)
        stoch, deter = state["stoch"], state["deter"]
        embed_part = self.obs_embed(embed)  # the embed half of the posterior layer, for all steps at once
        keep = (1.0 - is_first.to(embed_part.dtype)).unsqueeze(-1)
        uniform = self.noise(length, batch, device=embed.device)
        step = self.steps.get("obs", self.obs_step)
        deters, stochs, post_logits = [], [], []
        for t in range(length):
            deter, logits, stoch = step(stoch, deter, prev_action[:, t], keep[:, t], embed_part[:, t], uniform[t])
            deters.append(deter)
            stochs.append(stoch)
            post_logits.append(logits)
        deter_seq = torch.stack(deters, 1)
        return {
            "deter": deter_seq,
            "stoch": torch.stack(stochs, 1),
            "post_logits": torch.stack(post_logits, 1),
            "prior_logits": self.prior(deter_seq),  # batched over time: the prior only depends on deter
        }

    def kl(self, lhs_logits: torch.Tensor, rhs_logits: torch.Tensor) -> torch.Tensor:
        """KL(lhs || rhs) summed over the stoch latents, shape (...)."""
        lhs, rhs = self.probs(lhs_logits), self.probs(rhs_logits)
        return (lhs * (lhs.log() - rhs.log())).sum((-2, -1))


def kl_loss(rssm: RSSM, post_logits, prior_logits, free_nats: float):
    """DreamerV3 KL balancing: dyn = KL(sg(post)||prior), rep = KL(post||sg(prior)), each clipped below at free_nats."""
    dyn = rssm.kl(post_logits.detach(), prior_logits)
    rep = rssm.kl(post_logits, prior_logits.detach())
    return dyn.clamp(min=free_nats), rep.clamp(min=free_nats), dyn.detach()


class WorldModel(nn.Module):
    """Encoder + RSSM + decoder + reward/continue heads for the observation keys present in obs_space."""

    def __init__(self, config, obs_space: dict[str, tuple[int, ...]]) -> None:
        super().__init__()
        cfg = self.cfg = to_cfg(config)
        self.image_keys = [k for k in cfg.image_keys if k in obs_space]
        self.vector_keys = [k for k in cfg.vector_keys if k in obs_space]
        self.vector_sizes = {k: int(obs_space[k][-1]) for k in self.vector_keys}
        embed_dim = 0
        if self.image_keys:
            shapes = [obs_space[k] for k in self.image_keys]
            if len({s[:2] for s in shapes}) != 1:
                raise ValueError(f"image keys {self.image_keys} must share height and width, got {shapes}")
            self.resolution, channels = shapes[0][0], sum(s[2] for s in shapes)
            self.channel_split = [s[2] for s in shapes]
            self.image_encoder = ConvEncoder(channels, self.resolution, cfg.depth, cfg.norm)
            embed_dim += self.image_encoder.out_dim
        # one MLP per vector key: under a shared input norm a 768-d prompt embedding would drown a 4-d proprio state
        self.vector_encoders = nn.ModuleDict(
            {k: MLP(n, cfg.units, cfg.layers, norm=cfg.norm) for k, n in self.vector_sizes.items()}
        )
        embed_dim += cfg.units * len(self.vector_keys)
        self.embed_dim = embed_dim
        self.rssm = RSSM(cfg, embed_dim, cfg.action_dim)
        feat = self.rssm.feat_dim
        if self.image_keys:
            self.image_decoder = ConvDecoder(feat, channels, self.resolution, cfg.depth, cfg.norm)
        self.vector_decoders = nn.ModuleDict(
            {k: MLP(feat, cfg.units, cfg.layers, out=n, norm=cfg.norm) for k, n in self.vector_sizes.items()}
        )
        self.reward_head = MLP(feat, cfg.units, cfg.layers, out=cfg.bins, norm=cfg.norm, zero_out=True)
        self.cont_head = MLP(feat, cfg.units, cfg.layers, out=1, norm=cfg.norm)
        self.twohot = TwoHot(cfg.bins, space=cfg.twohot)

    def set_channels_last(self, on: bool) -> None:
        for m in (
            getattr(self, "image_encoder", None),
            getattr(self, "image_decoder", None),
        ):
            if m is not None:
                m.channels_last = on
                m.to(memory_format=torch.channels_last if on else torch.contiguous_format)

    def encode(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Observations with leading dims (...,) -> embed (..., embed_dim); vectors are symlog'd."""
        parts = []
        if self.image_keys:
            image = torch.cat([obs[k] for k in self.image_keys], -1)
            lead = image.shape[:-3]
            parts.append(self.image_encoder(image.reshape(-1, *image.shape[-3:])).reshape(*lead, -1))
        parts += [self.vector_encoders[k](symlog(obs[k].float())) for k in self.vector_keys]
        return torch.cat(parts, -1)

    def image_loss(self, feat: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Squared error of the decoded frames against the uint8 frames (..., H, W, C), summed per frame, mean over
        frames; one function, so the compiled path fuses the target conversion, the error and its gradient."""
        target = image.float() / 255.0 - 0.5
        pred = self.image_decoder(feat.reshape(-1, feat.shape[-1])).reshape(target.shape)
        return ((pred.float() - target) ** 2).sum((-3, -2, -1)).mean()

    @staticmethod
    def feat(stoch: torch.Tensor, deter: torch.Tensor) -> torch.Tensor:
        return torch.cat([stoch, deter], -1)

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.twohot.mean(self.reward_head(feat))

    def cont(self, feat: torch.Tensor) -> torch.Tensor:
        """Mode of the continue Bernoulli (1 = episode goes on)."""
        return (self.cont_head(feat).squeeze(-1) > 0).float()

    @staticmethod
    def prev_actions(action: torch.Tensor) -> torch.Tensor:
        """a_{t-1} for each t; zero for the first step of the batch (its latent starts from zero anyway)."""
        return torch.cat([torch.zeros_like(action[:, :1]), action[:, :-1]], 1)

    def loss(self, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict]:
        """Total world-model loss for a (B, T) batch, its named parts (mean over B, T) and the posterior rollout."""
        cfg = self.cfg
        embed = self.encode(data)
        is_first = data["is_first"].clone()
        is_first[:, 0] = True  # every sequence starts from the zero latent
        with torch.profiler.record_function("agent/observe"):
            post = self.rssm.observe(embed, self.prev_actions(data["action"].float()), is_first)
        feat = self.feat(post["stoch"], post["deter"])
        losses: dict[str, torch.Tensor] = {}
        dyn, rep, kl_value = kl_loss(self.rssm, post["post_logits"], post["prior_logits"], cfg.free_nats)
        losses["dyn"], losses["rep"] = dyn.mean(), rep.mean()
        if self.image_keys:
            losses["image"] = self.image_loss(feat, torch.cat([data[k] for k in self.image_keys], -1))
        if self.vector_keys:
            losses["vector"] = sum(
                ((self.vector_decoders[k](feat).float() - symlog(data[k].float())) ** 2).sum(-1).mean()
                for k in self.vector_keys
            )
        losses["reward"] = self.twohot.loss(self.reward_head(feat), data["reward"].float()).mean()
        cont_target = 1.0 - data["is_terminal"].float()
        losses["cont"] = F.binary_cross_entropy_with_logits(self.cont_head(feat).squeeze(-1).float(), cont_target)
        scales = {
            "dyn": cfg.dyn_scale,
            "rep": cfg.rep_scale,
            "image": cfg.rec_scale,
            "vector": cfg.rec_scale,
        }
        scales.update(reward=cfg.rew_scale, cont=cfg.con_scale)
        total = sum(scales[k] * v for k, v in losses.items())
        out = {"embed": embed, "feat": feat, "kl": kl_value.mean(), **post}
        return total, losses, out
