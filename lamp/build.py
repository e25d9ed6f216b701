"""Building blocks shared by the jobs (train, evaluate): envs, scorer and the agent's observation space.

They live here, not in lamp/train.py, so that evaluation does not import the training loop (imports stay one-way:
train -> evaluate -> build).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from lamp.rundir import LATEST

CHECKPOINT = LATEST  # where a run's newest checkpoint lives (previous.pt is kept next to it)
PLUMBING_WARNING = "PLUMBING CHECK: the scorer is a randomly initialised tiny model, rewards are meaningless"


def env_spec(cfg: DictConfig, score_view: bool = False) -> tuple[str, dict[str, Any]]:
    """(registered env name, options) from the config; the back-end's own section is merged when it has one.

    Frames are rendered at `scorer.image_size` and area-downsampled to `env.size` in every phase, so the agent sees
    the same kind of frames in pretraining and fine-tuning; `score_view` (pretraining) also returns the full-size
    front camera for the scorer.
    """
    from envs.common import env_from_config

    backend_cfg = cfg.get(cfg.env.backend) if cfg.env.backend != "metaworld" else None
    name, options = env_from_config(cfg.env, cfg.textures, backend_cfg)
    options["render_size"] = int(cfg.scorer.image_size)
    options["score_view"] = bool(score_view)
    return name, options


def make_envs(cfg: DictConfig, workers: int | None = None, seed: int | None = None, score_view: bool = False) -> Any:
    from envs.vector import VectorEnv

    name, options = env_spec(cfg, score_view)
    return VectorEnv(name, workers or cfg.env.workers, options, timeout=cfg.env.worker_timeout, seed=seed)


def make_scorer(cfg: DictConfig, log: Any = print) -> Any:
    """The frozen reward model; the tiny random one (smoke runs) is announced loudly, real ones need real weights."""
    from lamp.scorers import make_scorer as build

    scorer = build(OmegaConf.to_container(cfg.scorer))
    if getattr(scorer, "kind", "") == "tiny":
        log(f"WARNING: {PLUMBING_WARNING}")
    if scorer is None:
        log("no scorer (scorer.kind: none): no language reward and no `lang` observation")
    return scorer


def obs_space(env_space: Any, lang_dim: int | None) -> dict[str, tuple[int, ...]]:
    """The agent's observation shapes: the env's keys (not the scorer's frames) plus the prompt embedding `lang`
    (absent without a scorer)."""
    from envs.common import SCORER_KEY

    space = {key: tuple(int(d) for d in sub.shape) for key, sub in env_space.spaces.items() if key != SCORER_KEY}
    if lang_dim is not None:
        space["lang"] = (int(lang_dim),)
    return space


def lang_dim(scorer: Any) -> int | None:
    """Size of the prompt embedding the scorer gives, or None without a scorer."""
    return None if scorer is None else int(scorer.embed_prompts(["a"]).shape[-1])


def instruction_embedding(scorer: Any, instruction: str) -> Any:
    """The task instruction's embedding as float32 numpy (the fine-tuning `lang`), or None without a scorer."""
    return None if scorer is None else scorer.embed_prompts([instruction])[0].cpu().numpy()


def task_instruction(cfg: DictConfig) -> str:
    """The downstream task's language instruction, as the env states it (e.g. 'push the button')."""
    from envs import make_env

    name, options = env_spec(cfg)
    env = make_env(name, **options)
    try:
        return str(getattr(env, "instruction", cfg.env.task.replace("_", " ")))
    finally:
        env.close()
