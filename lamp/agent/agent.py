"""The agent: one train step (world model + explorer + actor-critic), acting, and atomic checkpoints.

All losses are computed from the same parameters and back-propagated in one backward pass; each optimiser then
steps its own parameter group. A step whose loss is NaN/inf is skipped; `max_bad_steps` in a row stop training.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lamp.agent.behavior import ActorCritic, StreamNorm, frozen
from lamp.agent.config import to_cfg
from lamp.agent.explorer import Explorer
from lamp.agent.nets import clip_action
from lamp.agent.world_model import WorldModel
from lamp.atomic import atomic_path
from lamp.errors import UsageError

# config keys that change parameter shapes or semantics: a checkpoint must match them to be loaded
ARCH_KEYS = (
    "image_keys",
    "vector_keys",
    "action_dim",
    "deter",
    "hidden",
    "stoch",
    "classes",
    "depth",
    "units",
)
ARCH_KEYS += ("layers", "norm", "bins", "lang_to_actor")


# How the imagined reward blends the intrinsic and extrinsic streams (agent.expl.blend):
# lamp: intr_scale·disagreement + extr_scale·reward from raw values, as the original LAMP code (its per-stream
#       normalisers had momentum 1.0, i.e. were the identity); per_stream: each stream divided by its running mean |x|.
BLENDS = ("lamp", "per_stream")


def _adam(module: nn.Module, lr: float, eps: float) -> torch.optim.Adam:
    return torch.optim.Adam(module.parameters(), lr=lr, eps=eps, foreach=True)


class TrainingStopped(RuntimeError):
    """Raised after max_bad_steps consecutive non-finite losses; the message names the loss."""


class Agent(nn.Module):
    def __init__(
        self,
        config,
        obs_space: dict[str, tuple[int, ...]],
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        cfg = self.cfg = to_cfg(config)
        if cfg.expl.blend not in BLENDS:  # checked once here; the CLI checks it before LOGDIR is written
            raise ValueError(f"agent.expl.blend must be one of {BLENDS}, got {cfg.expl.blend!r}")
        self.device = torch.device(device)
        self.obs_space = {k: tuple(v) for k, v in obs_space.items()}
        self.world_model = WorldModel(cfg, self.obs_space)
        feat = self.world_model.rssm.feat_dim
        self.lang_to_actor = bool(cfg.lang_to_actor) and "lang" in self.obs_space
        ac_inp = feat + (self.obs_space["lang"][-1] if self.lang_to_actor else 0)
        self.behavior = ActorCritic(cfg, ac_inp)
        self.use_explorer = float(cfg.expl.intr_scale) > 0
        self.explorer = None
        if self.use_explorer:  # with intr_scale == 0 the ensemble is never built, trained or evaluated
            targets = {
                "stoch": cfg.stoch * cfg.classes,
                "deter": cfg.deter,
                "embed": self.world_model.embed_dim,
            }
            self.explorer = Explorer(cfg, feat, targets)
            if cfg.expl.blend == "per_stream":
                self.intr_norm = StreamNorm(cfg.expl.norm_decay)
                self.extr_norm = StreamNorm(cfg.expl.norm_decay)
            if cfg.expl.sum_norm:
                self.sum_norm = StreamNorm(cfg.expl.norm_decay)
        if cfg.channels_last:
            self.world_model.set_channels_last(True)
        self.to(self.device)
        if cfg.compile:  # compile forward functions, not modules, so state_dict keys stay the same
            wm = self.world_model
            for module in (getattr(wm, "image_encoder", None), getattr(wm, "image_decoder", None)):
                if module is not None:
                    module.forward = torch.compile(module.forward)
        self.optimizers = {
            "model": _adam(self.world_model, cfg.model_lr, cfg.model_eps),
            "actor": _adam(self.behavior.actor, cfg.actor_lr, cfg.ac_eps),
            "critic": _adam(self.behavior.critic, cfg.critic_lr, cfg.ac_eps),
        }
        self.clips = {
            "model": cfg.model_clip,
            "actor": cfg.ac_clip,
            "critic": cfg.ac_clip,
        }
        if self.explorer is not None:
            self.optimizers["explorer"] = _adam(self.explorer, cfg.expl.lr, cfg.expl.eps)
            self.clips["explorer"] = cfg.expl.clip
        self.counters = {"updates": 0, "skipped": 0, "bad_in_row": 0}
        self.autocast_dtype = torch.bfloat16 if cfg.precision in ("bf16", "bfloat16") else None

    # ----------------------------------------------------------------------------------------------- training
    def _ac_input(self, feat: torch.Tensor, lang: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([feat, lang.to(feat.dtype)], -1) if self.lang_to_actor else feat

    def imagine(self, stoch: torch.Tensor, deter: torch.Tensor, lang: torch.Tensor | None):
        """Roll the policy forward `horizon` steps in the latent dynamics from N start states.

        The actor keeps its graph, so its loss reuses these forward passes. With actor_grad "dynamics" the sampled
        (reparameterised) actions and the world model's steps keep theirs too, with the world model's parameters
        frozen, so the return can be differentiated w.r.t. the actions; the actor's input is a constant (as in
        DreamerV2/3). Returns feats (N, H+1, F), actions (N, H, A) and the actor outputs (N, H, 2A).
        """
        rssm, horizon = self.world_model.rssm, self.cfg.horizon
        dynamics = self.cfg.actor_grad == "dynamics"
        feats, actions, outs = [self.world_model.feat(stoch, deter)], [], []
        with frozen(self.world_model) if dynamics else contextlib.nullcontext():
            for _ in range(horizon):
                out = self.behavior.actor(self._ac_input(feats[-1].detach(), lang))
                with torch.set_grad_enabled(dynamics):
                    action = clip_action(self.behavior.make_dist(out).sample())  # stay where the replay has data
                    stoch, deter = rssm.imagine_step(stoch, deter, action)
                    feats.append(self.world_model.feat(stoch, deter))
                outs.append(out)
                actions.append(action)
        return torch.stack(feats, 1), torch.stack(actions, 1), torch.stack(outs, 1)

    def imagined_reward(self, feat: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Reward for transitions t -> t+1: intr_scale·disagreement + extr_scale·reward head (see BLENDS).

        Keeps the graph to feat/action when grad is enabled (actor_grad "dynamics"); the heads stay frozen. Logs the
        spread over the imagined batch of each stream's scaled contribution, so a run shows which term drives the
        behaviour (intr_std / extr_std).
        """
        ecfg = self.cfg.expl
        with frozen(self.world_model):
            extrinsic = self.world_model.reward(feat[:, 1:])
        if self.explorer is None:
            return ecfg.extr_scale * extrinsic, {}
        with frozen(self.explorer):
            disagreement = self.explorer.disagreement(feat[:, :-1], action)
        intrinsic = disagreement
        if ecfg.blend == "per_stream":
            intrinsic, intr_mag = self.intr_norm(intrinsic)
            extrinsic, extr_mag = self.extr_norm(extrinsic)
            self._pending += [(self.intr_norm, intr_mag), (self.extr_norm, extr_mag)]
        intrinsic, extrinsic = ecfg.intr_scale * intrinsic, ecfg.extr_scale * extrinsic
        reward = intrinsic + extrinsic
        if ecfg.sum_norm:
            reward, sum_mag = self.sum_norm(reward)
            self._pending.append((self.sum_norm, sum_mag))
        with torch.no_grad():
            intr_std, extr_std = intrinsic.float().std(), extrinsic.float().std()
        metrics = {
            "disagreement": disagreement.detach().mean(),
            "intr_std": intr_std,
            "extr_std": extr_std,
            "intr_extr_ratio": intr_std / extr_std,  # inf when the extrinsic term is off (p2e): logged as "inf"
        }
        return reward, metrics

    def compute_losses(self, data: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        cfg = self.cfg
        with torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        ):
            model_loss, parts, post = self.world_model.loss(data)
            losses = {"model": model_loss}
            metrics = {f"model/{k}": v.detach() for k, v in parts.items()}
            metrics["model/kl"] = post["kl"]
            if self.explorer is not None:
                target = {
                    "stoch": post["stoch"],
                    "deter": post["deter"],
                    "embed": post["embed"],
                }[self.explorer.target]
                losses["explorer"] = self.explorer.loss(post["feat"], data["action"].float(), target)
            # imagination starts from every posterior state of the batch
            stoch = post["stoch"].detach().flatten(0, 1)
            deter = post["deter"].detach().flatten(0, 1)
            lang = data["lang"].float().flatten(0, 1) if self.lang_to_actor else None
            lang_seq = lang.unsqueeze(1).expand(-1, cfg.horizon + 1, -1) if lang is not None else None
            start_cont = 1.0 - data["is_terminal"].float().flatten(0, 1)
            feat, action, actor_out = self.imagine(stoch, deter, lang)
            with torch.set_grad_enabled(cfg.actor_grad == "dynamics"):
                reward, expl_metrics = self.imagined_reward(feat, action)
            with torch.no_grad():
                cont = torch.cat([start_cont[:, None], self.world_model.cont(feat[:, 1:].detach())], 1)
            inp = self._ac_input(feat, lang_seq)
            actor_loss, critic_loss, ac_metrics, stats = self.behavior.loss(inp, actor_out, action, reward, cont)
        self._pending.append((self.behavior.retnorm, stats))
        losses["actor"], losses["critic"] = actor_loss, critic_loss
        metrics.update({f"behavior/{k}": v.detach() for k, v in {**ac_metrics, **expl_metrics}.items()})
        metrics["behavior/imag_reward"] = reward.detach().mean()
        return losses, metrics

    def train_step(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One gradient step on a (B, T) batch; returns metric tensors (no host sync except the finite check)."""
        data = self.to_tensors(data)
        self._pending: list = []  # normaliser statistics, committed only if this step is applied
        losses, metrics = self.compute_losses(data)
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        total = sum(losses.values())
        if not bool(torch.isfinite(total.detach())):  # the one host sync per step: needed to skip bad updates
            return self._bad_step(losses, metrics)
        total.backward()
        for name, opt in self.optimizers.items():
            params = [p for g in opt.param_groups for p in g["params"]]
            metrics[f"grad_norm/{name}"] = torch.nn.utils.clip_grad_norm_(params, self.clips[name], foreach=True)
            opt.step()
        for norm, value in self._pending:
            norm.commit(value)
        self.behavior.update_slow_critic()
        self.counters["updates"] += 1
        self.counters["bad_in_row"] = 0
        metrics.update({f"loss/{k}": v.detach() for k, v in losses.items()})
        return metrics

    def _bad_step(self, losses: dict[str, torch.Tensor], metrics: dict) -> dict:
        bad = [k for k, v in {**losses, **metrics}.items() if v.ndim == 0 and not bool(torch.isfinite(v))]
        self.counters["skipped"] += 1
        self.counters["bad_in_row"] += 1
        if self.counters["bad_in_row"] >= self.cfg.max_bad_steps:
            raise TrainingStopped(
                f"training stopped: loss {', '.join(bad)} was NaN/inf for {self.counters['bad_in_row']} steps in a row"
            )
        return {"skipped": torch.tensor(1.0)}

    def to_tensors(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        """numpy batch -> tensors on the agent's device (through pinned memory on GPU, copied asynchronously)."""
        pin = self.device.type == "cuda"
        out = {}
        for k, v in data.items():
            t = torch.as_tensor(v)
            out[k] = (t.pin_memory() if pin else t).to(self.device, non_blocking=True)
        return out

    def model_bytes(self) -> int:
        """Parameters, buffers and Adam moments (2 per parameter), for the start-up memory budget."""
        params = sum(p.numel() * p.element_size() for p in self.parameters())
        buffers = sum(b.numel() * b.element_size() for b in self.buffers())
        return 3 * params + buffers

    # ------------------------------------------------------------------------------------------------ acting
    def initial_state(self, batch: int) -> dict[str, torch.Tensor]:
        state = self.world_model.rssm.initial(batch, self.device)
        state["action"] = torch.zeros(batch, self.cfg.action_dim, device=self.device)
        return state

    @torch.no_grad()
    def policy(self, obs: dict[str, Any], state: dict | None = None, mode: str = "train"):
        """obs: batch of one step per env (B, ...) with is_first; returns actions in [−1, 1] (numpy) and new state."""
        obs = self.to_tensors({k: v for k, v in obs.items() if k in self.obs_space or k == "is_first"})
        batch = obs["is_first"].shape[0]
        state = state or self.initial_state(batch)
        keep = (1.0 - obs["is_first"].float()).unsqueeze(-1)
        rssm = self.world_model.rssm
        embed = self.world_model.encode(obs)
        deter = rssm.img_step(state["stoch"] * keep, state["deter"] * keep, state["action"] * keep)
        hidden = torch.nn.functional.silu(rssm.obs_norm(rssm.obs_deter(deter) + rssm.obs_embed(embed)))
        stoch = rssm.sample(rssm.post(hidden))
        inp = self._ac_input(self.world_model.feat(stoch, deter), obs.get("lang"))
        dist = self.behavior.dist(inp)
        action = (dist.mode() if mode == "eval" else dist.sample()).clamp(-1, 1)
        return action.cpu().numpy(), {"stoch": stoch, "deter": deter, "action": action}

    # ------------------------------------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        return {
            "config": {k: self.cfg[k] for k in ARCH_KEYS},
            "obs_space": self.obs_space,
            "explorer": self.explorer is not None,
            "model": self.state_dict(),
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "counters": dict(self.counters),
            "rng": {
                "python": random.getstate(),
                "numpy": _numpy_state_to_torch(np.random.get_state()),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Atomic checkpoint: temp file in the same folder, fsync, rename. `extra` holds e.g. the replay pointer."""
        save_atomic({"agent": self.state(), "extra": extra or {}}, path)

    def load(self, path: str | Path) -> dict[str, Any]:
        """Load a checkpoint written by `save`; refuses (UsageError, one line) if config or shapes differ."""
        ckpt = torch.load(path, map_location=self.device, weights_only=True)
        state = ckpt["agent"]
        mine = self.state()
        problems = [
            f"agent.{k}: {state['config'].get(k)!r} != {mine['config'][k]!r}"
            for k in ARCH_KEYS
            if state["config"].get(k) != mine["config"][k]
        ]
        if state["obs_space"] != mine["obs_space"]:
            problems.append(f"obs_space: {state['obs_space']} != {mine['obs_space']}")
        if state["explorer"] != mine["explorer"]:
            problems.append(f"explorer (expl.intr_scale > 0): {state['explorer']} != {mine['explorer']}")
        theirs, ours = state["model"], mine["model"]

        def shape(sd: dict, k: str) -> str:
            return str(tuple(sd[k].shape)) if k in sd else "missing"

        tensors = [
            f"{k}: {shape(theirs, k)} != {shape(ours, k)}"
            for k in sorted(set(theirs) | set(ours))
            if k not in theirs or k not in ours or tuple(theirs[k].shape) != tuple(ours[k].shape)
        ]
        if tensors:
            problems.append(f"{len(tensors)} tensors differ (e.g. {'; '.join(tensors[:2])})")
        if problems:
            raise UsageError(
                f"checkpoint {path} does not match this config: {'; '.join(problems)} (resume with the same config)"
            )
        self.load_state_dict(theirs)
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        self.counters.update(state["counters"])
        rng = state["rng"]
        random.setstate(rng["python"])
        np.random.set_state(_numpy_state_from_torch(rng["numpy"]))
        torch.set_rng_state(rng["torch"].cpu())
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        return ckpt["extra"]


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save to a temp file in the target folder, fsync, then rename over `path`. Through a file object, so a
    full disk is an OSError (ENOSPC) rather than torch's zip-writer RuntimeError."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def _numpy_state_to_torch(state: tuple) -> list:
    """numpy's legacy RNG state with its key array as a tensor, so checkpoints load with weights_only=True."""
    name, key, pos, has_gauss, cached = state
    return [
        name,
        torch.from_numpy(key.astype(np.int64)),
        int(pos),
        int(has_gauss),
        float(cached),
    ]


def _numpy_state_from_torch(state: list) -> tuple:
    name, key, pos, has_gauss, cached = state
    return (name, key.cpu().numpy().astype(np.uint32), pos, has_gauss, cached)
