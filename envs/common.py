"""What every back-end shares (4-d action, observation space), so the agent never knows which simulator runs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

ACTION_DIM = 4  # end-effector xyz delta + gripper, as in LAMP/RLBench and Meta-World


def action_space() -> gym.spaces.Box:
    """Box(-1, 1, (4,)): xyz delta scaled by the back-end's step size, and the gripper command."""
    return gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)


# The front camera at the scorer's resolution (pretraining only): scored once the episode ends, never stored in the
# replay and never seen by the agent.
SCORER_KEY = "score_image"


def observation_space(size: int, wrist: bool, state_dim: int, score_size: int = 0) -> gym.spaces.Dict:
    """Dict of `image` (front camera), optional `wrist`, float32 `state` (proprio), optional `score_image`."""
    spaces: dict[str, gym.spaces.Space] = {"image": gym.spaces.Box(0, 255, (size, size, 3), np.uint8)}
    if wrist:
        spaces["wrist"] = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
    spaces["state"] = gym.spaces.Box(-np.inf, np.inf, (state_dim,), np.float32)
    if score_size:
        spaces[SCORER_KEY] = gym.spaces.Box(0, 255, (score_size, score_size, 3), np.uint8)
    return gym.spaces.Dict(spaces)


def check_render_size(size: int, render_size: int) -> int:
    """Frames are rendered at `render_size` (the scorer's 128 px) and area-downsampled to the agent's `size`.

    One render serves both the scorer and the agent, and the agent's frames look the same in pretraining and
    fine-tuning. 0 means `size`. It must be a whole multiple of `size` so the downsampling is an exact box filter.
    """
    render_size = int(render_size) or int(size)
    if render_size < size or render_size % size:
        raise ValueError(
            f"scorer.image_size {render_size} must be a whole multiple of env.size {size} (e.g. 128 for 64 or 128)"
        )
    return render_size


def area_downsample(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, C) -> (size, size, C) by averaging k×k blocks (H = W = k·size), rounded to nearest."""
    k = image.shape[0] // size
    if k == 1:
        return image
    blocks = image.reshape(size, k, size, k, image.shape[-1]).astype(np.uint16).sum((1, 3))
    return ((blocks + (k * k) // 2) // (k * k)).astype(np.uint8)


def check_action(action: object) -> np.ndarray:
    """Validate an action: wrong shape or non-finite values are errors (never a silent clip); in-range clip only."""
    arr = np.asarray(action, dtype=np.float32)
    if arr.shape != (ACTION_DIM,):
        raise ValueError(f"action must have shape ({ACTION_DIM},) (xyz delta + gripper), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"action contains NaN or inf: {arr.tolist()}; check the policy output")
    return np.clip(arr, -1.0, 1.0)


# Keys of the `env:` config section that configure the runner, not the env itself.
RUNNER_KEYS = ("backend", "task", "workers", "worker_timeout")
# Meta-World-only keys, left out for other back-ends.
METAWORLD_KEYS = ("pool", "decimate", "max_scenes", "action_repeat")


def env_from_config(env_cfg: Any, textures_cfg: Any = None, backend_cfg: Any = None) -> tuple[str, dict[str, Any]]:
    """(name, options) for `make_env` / `VectorEnv` from the `env:`, `textures:` and a back-end's own section
    (e.g. `rlbench:`). Works with plain dicts or OmegaConf nodes, so every entry point builds envs the same way."""
    env = dict(env_cfg.items())
    name = f"{env['backend']}/{env['task']}"
    skip = RUNNER_KEYS if env["backend"] == "metaworld" else RUNNER_KEYS + METAWORLD_KEYS
    options = {k: v for k, v in env.items() if k not in skip}
    if textures_cfg is not None:
        options["textures"] = dict(textures_cfg.items())
    if backend_cfg is not None:
        options.update(dict(backend_cfg.items()))
    return name, options
