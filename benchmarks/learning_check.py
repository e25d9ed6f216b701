"""Learning check (benchmark, not CI): train the agent from scratch on a dense-reward task and print success rates.

Uses `envs.make_env(--env)` when that env is registered (e.g. the embedded `push_button` of issue 3); otherwise a
built-in 2-D reach task rendered to 64×64 images (`reach`), which needs nothing but numpy. Prints one JSON line per
block of episodes and a final JSON summary with the random-policy baseline measured in the same run.

    python benchmarks/learning_check.py --size small --env-steps 20000 --train-ratio 32
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class ReachEnv(gym.Env):
    """Move a dot onto a target in the unit square; reward −distance, success within 0.1, 50 steps per episode."""

    def __init__(self, size: int = 64, length: int = 50) -> None:
        self.size, self.length = size, length
        self.observation_space = gym.spaces.Dict(
            {
                "image": gym.spaces.Box(0, 255, (size, size, 3), np.uint8),
                "state": gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
            }
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        image = np.zeros((self.size, self.size, 3), np.uint8)
        for point, channel in ((self.target, 1), (self.pos, 0)):
            x, y = (point * (self.size - 1)).astype(int)
            image[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3, channel] = 255
        return {"image": image, "state": np.concatenate([self.pos, self.target]).astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(0.1, 0.9, 2)
        self.target = self.np_random.uniform(0.1, 0.9, 2)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.05 * np.clip(np.asarray(action, np.float32)[:2], -1, 1), 0, 1)
        self.t += 1
        dist = float(np.linalg.norm(self.pos - self.target))
        return self._obs(), -dist, False, self.t >= self.length, {"success": dist < 0.1}


def make_env(name: str):
    if name == "reach":
        return ReachEnv()
    import envs

    return envs.make_env(name)


def main() -> None:
    import torch

    from lamp.agent.agent import Agent
    from lamp.agent.config import make_config
    from lamp.agent.replay import Replay

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="reach")
    parser.add_argument("--size", default="small")
    parser.add_argument("--env-steps", type=int, default=20000)
    parser.add_argument("--prefill", type=int, default=1000)
    parser.add_argument("--train-ratio", type=float, default=32)
    parser.add_argument("--precision", default="bfloat16")
    parser.add_argument("--block", type=int, default=10, help="episodes per printed success rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", type=int, default=1, help="channels-last + torch.compile of the conv stacks")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    env = make_env(args.env)
    obs, _ = env.reset(seed=args.seed)
    lang = np.random.default_rng(args.seed).normal(size=768).astype(np.float32)  # a fixed "prompt embedding"
    space = {k: v.shape for k, v in env.observation_space.spaces.items()} | {"lang": (768,)}
    cfg = make_config(args.size, precision=args.precision, channels_last=bool(args.fast), compile=bool(args.fast))
    agent = Agent(cfg, space)
    replay = Replay({"capacity": args.env_steps + 10, "chunk": 1024}, space, action_dim=4, seed=args.seed)
    replayed_per_update = cfg.batch_size * cfg.batch_length
    state, is_first, successes, curve, last_reward = None, True, [], [], 0.0
    episode_success, updates, owed = False, 0, 0.0
    random_successes: list[bool] = []
    start = time.time()
    for step in range(args.env_steps):
        step_obs = {**obs, "lang": lang}
        batch_obs = {k: v[None] for k, v in step_obs.items()} | {"is_first": np.array([is_first])}
        if step < args.prefill:
            action = np.random.uniform(-1, 1, 4).astype(np.float32)
        else:
            action, state = agent.policy(batch_obs, state)
            action = action[0]
        obs, reward, terminated, truncated, info = env.step(action)
        replay.add(
            {
                **step_obs,
                "action": action,
                "reward": np.float32(0.0 if is_first else last_reward),
                "is_first": is_first,
                "is_last": False,
                "is_terminal": False,
            }
        )
        last_reward, is_first = reward, False
        episode_success |= bool(info.get("success", False))
        if terminated or truncated:
            replay.add(
                {
                    **obs,
                    "lang": lang,
                    "action": np.zeros(4, np.float32),
                    "reward": np.float32(reward),
                    "is_first": False,
                    "is_last": True,
                    "is_terminal": bool(terminated),
                }
            )
            (random_successes if step < args.prefill else successes).append(episode_success)
            if step >= args.prefill and len(successes) % args.block == 0:
                row = {
                    "env_steps": step + 1,
                    "updates": updates,
                    "success_rate": float(np.mean(successes[-args.block :])),
                    "minutes": round((time.time() - start) / 60, 1),
                }
                curve.append(row)
                print(json.dumps(row), flush=True)
            obs, _ = env.reset()
            is_first, episode_success, state = True, False, None
        if step >= args.prefill and len(replay) >= cfg.batch_length:
            owed += args.train_ratio / replayed_per_update
            while owed >= 1:
                agent.train_step(replay.sample(cfg.batch_size, cfg.batch_length))
                updates += 1
                owed -= 1
    summary = {
        "benchmark": "learning_check",
        "env": args.env,
        "size": args.size,
        "env_steps": args.env_steps,
        "updates": updates,
        "random_policy_success_rate": float(np.mean(random_successes)) if random_successes else None,
        "final_success_rate": curve[-1]["success_rate"] if curve else None,
        "curve": curve,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
