"""The agent: one train step (world model + explorer + actor-critic), acting, and atomic checkpoints.

All losses are computed from the same parameters and back-propagated in one backward pass; each optimiser then
steps its own parameter group. A step whose loss is NaN/inf is skipped; `max_bad_steps` in a row stop training.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lamp.agent.behavior import ActorCritic, StreamNorm, frozen
from lamp.agent.config import to_cfg
from lamp.agent.explorer import Explorer
from lamp.agent.nets import clip_action
from lamp.agent.speed import choose_precision
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
ARCH_KEYS += ("layers", "norm", "bins", "lang_to_actor", "twohot")
# The value an ARCH key had before checkpoints recorded it: the only behaviour that existed then, so old checkpoints
# still load (twohot: bins placed in symlog space).
ARCH_BEFORE_KEY = {"twohot": "symlog"}


def saved_arch(config: dict[str, Any], key: str) -> Any:
    """A checkpoint's recorded value of an ARCH key; one saved before the key existed had ARCH_BEFORE_KEY's."""
    return config.get(key, ARCH_BEFORE_KEY.get(key))


# How the imagined reward blends the intrinsic and extrinsic streams (agent.expl.blend):
# lamp: intr_scale·disagreement + extr_scale·reward from raw values, as the original LAMP code (its per-stream
#       normalisers had momentum 1.0, i.e. were the identity); per_stream: each stream divided by its running mean |x|.
BLENDS = ("lamp", "per_stream")


# The replay value loss regresses the critic onto returns of the replayed reward; with Plan2Explore the critic's
# imagined targets are returns of another reward (disagreement blended in), and one critic cannot regress both.
REPVAL_WITH_EXPLORER = (
    "agent.repval > 0 needs the imagined reward to be the replayed one, but agent.expl.intr_scale > 0 blends in the "
    "ensemble's disagreement; set --agent.repval 0 for Plan2Explore / LAMP pretraining"
)


def _adam(module: nn.Module, lr: float, eps: float) -> torch.optim.Adam:
    return torch.optim.Adam(module.parameters(), lr=lr, eps=eps, foreach=True)


def phase(name: str) -> torch.profiler.record_function:
    """Names a part of the step for torch.profiler (benchmarks/agent_throughput.py --profile); ~1 µs otherwise."""
    return torch.profiler.record_function(name)


@dataclass
class Prefetched:
    """A batch already on its way to the GPU (`Agent.prefetch`): its tensors and the event that marks the copy done."""

    tensors: dict[str, torch.Tensor]
    ready: Any


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
        if cfg.repval > 0 and float(cfg.expl.intr_scale) > 0:
            raise ValueError(REPVAL_WITH_EXPLORER)
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
        # Without an ensemble the reward normalisers still apply to the one stream there is: the original's
        # actor-critic divided whatever reward it was given by its running magnitude (sum_norm), and its per-stream
        # normaliser of the extrinsic term ran in fine-tuning too (per_stream)
        if cfg.expl.blend == "per_stream":
            self.extr_norm = StreamNorm(cfg.expl.norm_decay)
        if cfg.expl.sum_norm:
            self.sum_norm = StreamNorm(cfg.expl.norm_decay)
        if cfg.channels_last:
            self.world_model.set_channels_last(True)
        self.to(self.device)
        self.steps: dict[str, Any] = {}  # compiled step functions by name; empty runs everything eagerly
        self._copy_stream = None  # CUDA stream of `prefetch`
        self.compile_mode: str | None = None
        if cfg.compile is True:  # 'auto' is decided by the training job (it knows the run's length): eager here
            self.compile_steps()
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
        # 'auto' times fp32 against bf16 on this device (~1 s, once per process); `precision.reason` says why
        self.precision = choose_precision(cfg.precision, self.device)
        self.autocast_dtype = self.precision.dtype

    def compile_steps(self, mode: str | None = None) -> None:
        """torch.compile the parts that run many small or element-wise ops: the conv stacks, the posterior and the
        imagination steps, the heads evaluated on every imagined state, and the ensemble.

        Functions are compiled, not modules, so state_dict keys and checkpoints stay the same; random numbers are
        drawn outside the compiled code, so the compiled and eager paths compute the same losses
        (tests/test_agent_fast.py). On CUDA the default mode of the two step functions is "reduce-overhead": each
        posterior and imagination step is replayed as a CUDA graph (the loops are launch-bound at batch 16); the
        large-batch parts keep the default mode (the critic's graph is also differentiated twice, see split_grad).
        """
        if mode is None:
            mode = "reduce-overhead" if self.device.type == "cuda" else "default"
        self.compile_mode = mode
        # one code object (MLP.forward) serves several heads, each traced for grad/no-grad and two batch shapes
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 32)

        def comp(fn, loop_step: bool = False):
            return torch.compile(fn, mode=mode if loop_step else "default", dynamic=False)

        wm, behavior = self.world_model, self.behavior
        for module in (getattr(wm, "image_encoder", None), getattr(wm, "image_decoder", None)):
            if module is not None:
                module.forward = comp(module.forward)
        if wm.image_keys:
            wm.image_loss = comp(wm.image_loss)  # decoder + loss in one graph (the decoder alone serves videos)
        for head in (wm.reward_head, wm.cont_head, behavior.critic, behavior.slow_critic):
            head.forward = comp(head.forward)
        if self.explorer is not None:  # the whole reductions, so their backward is fused too
            self.explorer.loss = comp(self.explorer.loss)
            self.explorer.disagreement = comp(self.explorer.disagreement)
        wm.rssm.steps["obs"] = comp(wm.rssm.obs_step, loop_step=True)
        self.steps["imagine"] = comp(self.imagine_step, loop_step=True)

    # ----------------------------------------------------------------------------------------------- training
    def _ac_input(self, feat: torch.Tensor, lang: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([feat, lang.to(feat.dtype)], -1) if self.lang_to_actor else feat

    def imagine(self, stoch: torch.Tensor, deter: torch.Tensor, lang: torch.Tensor | None):
        """Roll the policy forward `horizon` steps in the latent dynamics from N start states.

        The actor keeps its graph, so its loss reuses these forward passes. With actor_grad "dynamics" the sampled
        (reparameterised) actions and the world model's steps keep theirs too, with the world model's parameters
        frozen, so the return can be differentiated w.r.t. the actions; the actor's input is a constant (as in
        DreamerV2/3). The noise of all steps is drawn up front, so the compiled step (`agent.compile`) and the eager
        one see the same random numbers. Returns feats (N, H+1, F), actions (N, H, A) and the actor outputs (N, H, 2A).
        """
        rssm, horizon = self.world_model.rssm, self.cfg.horizon
        normal = torch.randn(horizon, stoch.shape[0], self.cfg.action_dim, device=stoch.device)
        uniform = rssm.noise(horizon, stoch.shape[0], device=stoch.device)
        step = self.steps.get("imagine", self.imagine_step)
        stochs, deters, actions, outs = [stoch], [deter], [], []
        with frozen(self.world_model) if self.cfg.actor_grad == "dynamics" else contextlib.nullcontext():
            for t in range(horizon):
                out, action, stoch, deter = step(stoch, deter, lang, normal[t], uniform[t])
                stochs.append(stoch)
                deters.append(deter)
                outs.append(out)
                actions.append(action)
        feat = self.world_model.feat(torch.stack(stochs, 1), torch.stack(deters, 1))
        return feat, torch.stack(actions, 1), torch.stack(outs, 1)

    def imagine_step(
        self,
        stoch: torch.Tensor,
        deter: torch.Tensor,
        lang: torch.Tensor | None,
        normal: torch.Tensor,
        uniform: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One imagined step: actor output at (stoch, deter), its clipped sample, and the next (stoch, deter).

        Only "dynamics" keeps the graph through the sample and the world model (whose parameters `imagine` froze).
        """
        inp = self._ac_input(self.world_model.feat(stoch, deter).detach(), lang)
        out = self.behavior.actor(inp)
        with torch.set_grad_enabled(self.cfg.actor_grad == "dynamics" and torch.is_grad_enabled()):
            action = clip_action(self.behavior.make_dist(out).sample(normal))  # stay where the replay has data
            stoch, deter = self.world_model.rssm.imagine_step(stoch, deter, action, uniform)
        return out, action, stoch, deter

    def imagined_reward(self, feat: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Reward for transitions t -> t+1: intr_scale·disagreement + extr_scale·reward head (see BLENDS).

        Keeps the graph to feat/action when grad is enabled (actor_grad "dynamics"); the heads stay frozen. Logs the
        spread over the imagined batch of each stream's scaled contribution, so a run shows which term drives the
        behaviour (intr_std / extr_std).
        """
        ecfg = self.cfg.expl
        with frozen(self.world_model):
            extrinsic = self.world_model.reward(feat[:, 1:])
        if ecfg.blend == "per_stream":
            extrinsic, extr_mag = self.extr_norm(extrinsic)
            self._pending.append((self.extr_norm, extr_mag))
        extrinsic = ecfg.extr_scale * extrinsic
        metrics: dict[str, torch.Tensor] = {}
        if self.explorer is None:
            reward = extrinsic
        else:
            with frozen(self.explorer):
                disagreement = self.explorer.disagreement(feat[:, :-1], action)
            intrinsic = disagreement
            if ecfg.blend == "per_stream":
                intrinsic, intr_mag = self.intr_norm(intrinsic)
                self._pending.append((self.intr_norm, intr_mag))
            intrinsic = ecfg.intr_scale * intrinsic
            reward = intrinsic + extrinsic
            with torch.no_grad():
                intr_std, extr_std = intrinsic.float().std(), extrinsic.float().std()
                # undefined (NaN, written as null) when the extrinsic term has no spread, e.g. extr_scale 0 (p2e)
                ratio = torch.where(extr_std > 0, intr_std / extr_std, torch.full_like(intr_std, float("nan")))
            metrics = {
                "disagreement": disagreement.detach().mean(),
                "intr_std": intr_std,
                "extr_std": extr_std,
                "intr_extr_ratio": ratio,
            }
        if ecfg.sum_norm:
            reward, sum_mag = self.sum_norm(reward)
            self._pending.append((self.sum_norm, sum_mag))
        return reward, metrics

    def compute_losses(self, data: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        cfg = self.cfg
        with torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        ):
            with phase("agent/world_model"):
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
                with phase("agent/explorer"):
                    is_first = data["is_first"].float()
                    losses["explorer"] = self.explorer.loss(post["feat"], data["action"].float(), target, is_first)
            # imagination starts from every posterior state of the batch
            stoch = post["stoch"].detach().flatten(0, 1)
            deter = post["deter"].detach().flatten(0, 1)
            lang = data["lang"].float().flatten(0, 1) if self.lang_to_actor else None
            lang_seq = lang.unsqueeze(1).expand(-1, cfg.horizon + 1, -1) if lang is not None else None
            start_cont = 1.0 - data["is_terminal"].float().flatten(0, 1)
            with phase("agent/imagine"):
                feat, action, actor_out = self.imagine(stoch, deter, lang)
            with phase("agent/behavior"), torch.set_grad_enabled(cfg.actor_grad == "dynamics"):
                reward, expl_metrics = self.imagined_reward(feat, action)
            with phase("agent/behavior"):
                with torch.no_grad():
                    cont = torch.cat([start_cont[:, None], self.world_model.cont(feat[:, 1:].detach())], 1)
                inp = self._ac_input(feat, lang_seq)
                actor_loss, critic_loss, ac_metrics, stats, boot = self.behavior.loss(
                    inp, actor_out, action, reward, cont
                )
                if cfg.repval > 0:  # the critic also learns the real replayed returns (current DreamerV3)
                    post_lang = data["lang"].float() if self.lang_to_actor else None
                    repl_loss, repl_metrics = self.behavior.replay_loss(
                        self._ac_input(post["feat"], post_lang),
                        cfg.expl.extr_scale * data["reward"].float(),  # the reward imagination trains on
                        data["is_last"],
                        data["is_terminal"],
                        boot.reshape(post["feat"].shape[:2]),
                    )
                    critic_loss = critic_loss + cfg.repval * repl_loss
                    ac_metrics.update(repl_metrics, replay_value_loss=repl_loss.detach())
        self._pending.append((self.behavior.retnorm, stats))
        losses["actor"], losses["critic"] = actor_loss, critic_loss
        metrics.update({f"behavior/{k}": v.detach() for k, v in {**ac_metrics, **expl_metrics}.items()})
        metrics["behavior/imag_reward"] = reward.detach().mean()
        return losses, metrics

    def train_step(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One gradient step on a (B, T) batch; returns metric tensors (no host sync except the finite check)."""
        data = self.to_tensors(data)
        if self.device.type == "cuda" and self.compile_mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs may be reused now
        self._pending: list = []  # normaliser statistics, committed only if this step is applied
        losses, metrics = self.compute_losses(data)
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        total = sum(losses.values())
        if not bool(torch.isfinite(total.detach())):  # the one host sync per step: needed to skip bad updates
            return self._bad_step(losses, metrics)
        with phase("agent/backward"):
            total.backward()
        with phase("agent/optimizer"):
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
        undefined = ("intr_extr_ratio",)  # NaN by design when the extrinsic term is off: not a sign of trouble
        bad = [
            k
            for k, v in {**losses, **metrics}.items()
            if v.ndim == 0 and not bool(torch.isfinite(v)) and k.rpartition("/")[2] not in undefined
        ]
        self.counters["skipped"] += 1
        self.counters["bad_in_row"] += 1
        if self.counters["bad_in_row"] >= self.cfg.max_bad_steps:
            raise TrainingStopped(
                f"training stopped: loss {', '.join(bad)} was NaN/inf for {self.counters['bad_in_row']} steps in a row"
            )
        return {"skipped": torch.tensor(1.0)}

    def to_tensors(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        """numpy batch -> tensors on the agent's device (through pinned memory on GPU, copied asynchronously).

        A batch from `prefetch` is already there: the current stream only waits for its copy to finish.
        """
        if isinstance(data, Prefetched):
            torch.cuda.current_stream(self.device).wait_event(data.ready)
            return data.tensors
        pin = self.device.type == "cuda"
        out = {}
        for k, v in data.items():
            t = torch.as_tensor(v)
            out[k] = (t.pin_memory() if pin else t).to(self.device, non_blocking=True)
        return out

    def prefetch(self, data: dict[str, Any]) -> dict[str, Any] | Prefetched:
        """Start moving the next batch to the GPU on a side stream while the current step still runs there.

        Call it with batch t+1 before `train_step(batch t)`, then pass its result to the next `train_step`. On CPU
        it returns the batch unchanged (there is no copy to hide).
        """
        if self.device.type != "cuda":
            return data
        if self._copy_stream is None:
            self._copy_stream = torch.cuda.Stream(self.device)
        main = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self._copy_stream):
            tensors = {k: torch.as_tensor(v).pin_memory().to(self.device, non_blocking=True) for k, v in data.items()}
            for t in tensors.values():
                t.record_stream(main)  # its memory is not reused before the main stream is done with it
            ready = torch.cuda.Event()
            ready.record()
        return Prefetched(tensors, ready)

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
        deter, _, stoch = rssm.obs_step(state["stoch"], state["deter"], state["action"], keep, rssm.obs_embed(embed))
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
            f"agent.{k}: {saved_arch(state['config'], k)!r} != {mine['config'][k]!r}"
            for k in ARCH_KEYS
            if saved_arch(state["config"], k) != mine["config"][k]
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
