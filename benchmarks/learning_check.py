"""Learning check (benchmark, not CI): train the agent from scratch on a dense-reward task and print success rates.

Two kinds of task:
- `reach` (default): a built-in 2-D reach task rendered to 64x64 images, which needs nothing but numpy; a bare
  training loop here, one JSON line per block of training episodes.
- a downstream task (`push_button`, ...): `lamp finetune --scratch` on the embedded Meta-World scenes, i.e. the real
  training loop with its deterministic evaluations, checkpoints and resume: re-run the same command to continue a
  run that was stopped. `--obs image` hides the proprio state, so the agent sees only its front + wrist cameras.
Both print a final JSON summary with a uniform-random policy measured in the same run; a task run also measures
Meta-World's scripted expert and plots LOGDIR/learning_check.png (`--report`: print and plot without training).

    python benchmarks/learning_check.py --size small --env-steps 20000 --train-ratio 32
    python benchmarks/learning_check.py --env push_button --obs image --env-steps 30000 --logdir runs/lc_push
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class ReachEnv(gym.Env):
    """Move a dot onto a target in the square [−1, 1]² and stay there; reward −distance, 30 steps per episode.

    The state is (position, target, target − position), like DMC reacher's `to_target`. `info["success"]` is "within
    0.2 of the target now"; the check reports it at any step and at the last step (reach and stay), which a random
    walk rarely satisfies. A step moves the dot by up to 0.2 per axis, so an action changes the next reward by up to
    about ±0.2: much smaller moves hide the effect of an action under the world model's error.
    """

    def __init__(self, size: int = 64, length: int = 30, speed: float = 0.2, radius: float = 0.2) -> None:
        self.size, self.length, self.speed, self.radius = size, length, speed, radius
        self.observation_space = gym.spaces.Dict(
            {
                "image": gym.spaces.Box(0, 255, (size, size, 3), np.uint8),
                "state": gym.spaces.Box(-np.inf, np.inf, (6,), np.float32),
            }
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        image = np.zeros((self.size, self.size, 3), np.uint8)
        for point, channel in ((self.target, 1), (self.pos, 0)):
            x, y = ((point + 1) / 2 * (self.size - 1)).astype(int)
            image[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3, channel] = 255
        state = np.concatenate([self.pos, self.target, self.target - self.pos])
        return {"image": image, "state": state.astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict[str, np.ndarray], dict]:
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.8, 0.8, 2)
        self.target = self.np_random.uniform(-0.8, 0.8, 2)
        self.t = 0
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, bool]]:
        move = self.speed * np.clip(np.asarray(action, np.float32)[:2], -1, 1)
        self.pos = np.clip(self.pos + move, -1, 1)
        self.t += 1
        dist = float(np.linalg.norm(self.pos - self.target))
        return self._obs(), -dist, False, self.t >= self.length, {"success": dist < self.radius}


# train-step metrics printed per block: is the reward head right, what return does imagination expect, is the
# policy still exploring, how large is the return normaliser's scale
DIAGNOSTICS = (
    "model/reward",
    "model/kl",
    "behavior/imag_reward",
    "behavior/return",
    "behavior/entropy",
    "behavior/retnorm_scale",
)


def parse_value(text: str) -> Any:
    """YAML scalar, with numbers such as 3e-4 (a string to YAML 1.1) read as floats."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def make_env(name: str) -> Any:
    if name == "reach":
        return ReachEnv()
    import envs

    return envs.make_env(name)


TASK_DIAGNOSTICS = {  # metrics.jsonl keys printed next to each evaluation (the training rows' latest values)
    "reward_loss": "train/model/reward",
    "kl": "train/model/kl",
    "imag_reward": "train/behavior/imag_reward",
    "imag_return": "train/behavior/return",
    "entropy": "train/behavior/entropy",
    "episode_return": "episode/return",
}


def task_flags(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The config blocks and dotted flags of a task run. The recipe (train ratio, prefill, action repeat, discount,
    critic, batch shape) comes from lamp/configs.yaml, as a user's `lamp finetune --configs metaworld size2m` gets
    it; only the measurement (budget, evaluation cadence, observation keys, seed, threads) and what the user names
    (`--configs`, `--set`, `--prefill`, `--train-ratio`, `--episode-length`) are set here."""
    configs = ["metaworld", args.size or "size2m"] + (["fast"] if args.fast else []) + list(args.configs)
    flags = ["--seed", str(args.seed), "--run.steps", str(args.env_steps), "--run.eval_every", str(args.eval_every)]
    flags += ["--run.eval_episodes", str(args.eval_episodes), "--agent.precision", args.precision]
    flags += ["--threads", str(args.threads)]
    for flag, value in (
        ("--run.prefill", args.prefill),
        ("--agent.train_ratio", args.train_ratio),
        ("--env.episode_length", args.episode_length),
    ):
        if value is not None:
            flags += [flag, str(value)]
    if args.obs == "image":  # cameras only: no proprio state (and no language: there is no scorer)
        flags += ["--agent.vector_keys", "[]"]
    elif args.obs == "state":
        flags += ["--agent.image_keys", "[]"]
    for item in args.set:
        key, value = item.split("=", 1)
        flags += [f"--{key}" if "." in key else f"--agent.{key}", value]
    return configs, flags


def arm_name(args: argparse.Namespace) -> str:
    """The default run folder's arm part: everything that sets the recipe (size, blocks, --set items, numbers)."""
    parts = [args.size or "size2m", *args.configs, *(item.replace("=", "") for item in args.set)]
    parts += [f"{name}{value}" for name, value in (("tr", args.train_ratio), ("len", args.episode_length)) if value]
    parts += [] if args.prefill is None else [f"prefill{args.prefill}"]
    return "-".join(p.replace("/", "_") for p in parts)


def recipe_flags(flags: list[str]) -> list[str]:
    """The flags that set what is learned (not the budget, threads or precision), as pairs: --key value."""
    from lamp.config import is_runtime_key

    pairs = zip(flags[::2], flags[1::2], strict=True)
    return [x for key, value in pairs if not is_runtime_key(key[2:]) for x in (key, value)]


def same_recipe(logdir: Path, configs: list[str], flags: list[str], write: bool = True) -> Any:
    """The config a (re-)run in `logdir` trains with, and a guard: the arm (blocks and recipe flags) of the command
    that started the folder is saved in LOGDIR/learning_check_arm.json, and a command naming another arm is refused
    in one line (`lamp finetune` would resume the saved recipe, so the curve would belong to another arm than the
    command names). A folder that holds a run trains with its saved config (today's defaults may differ)."""
    from lamp.atomic import atomic_write_bytes
    from lamp.config import run_config
    from lamp.errors import UsageError
    from lamp.rundir import holds_run

    arm = {"configs": configs, "flags": recipe_flags(flags)}
    path = logdir / "learning_check_arm.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved != arm:
            raise UsageError(
                f"{logdir} holds the arm {saved['configs']} {' '.join(saved['flags'])} but this command names "
                f"{configs} {' '.join(arm['flags'])}; use another --logdir for this arm"
            )
    elif write and not holds_run(logdir):
        logdir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(arm).encode())
    return run_config(["finetune", *configs], None, flags, {"logdir": str(logdir)})[0]  # as lamp finetune resolves it


def task_check(args: argparse.Namespace) -> None:
    """`lamp finetune --scratch` on a downstream task, then its evaluation curve next to the random policy."""

    from lamp.atomic import atomic_write_bytes
    from lamp.config import build_config
    from lamp.errors import UsageError
    from lamp.evaluate import reference_policy
    from lamp.visualize import plot_eval_curves

    root = Path(__file__).resolve().parents[1]
    configs, flags = task_flags(args)
    cfg = build_config(["finetune", *configs], flags=flags)  # a bad block or key: one line before anything runs
    logdir = Path(args.logdir or f"runs/learning_check/{args.env}-{args.obs}-{arm_name(args)}-seed{args.seed}")
    logdir = logdir.expanduser()
    cfg = same_recipe(logdir, configs, flags, write=not args.report)
    length, repeat = int(cfg.env.episode_length), int(cfg.env.action_repeat)
    saved = logdir / "reference_policies.json"  # measured once per run directory; a resumed run reuses them
    key = {"env": args.env, "episodes": args.random_episodes, "seed": args.seed, "length": length, "repeat": repeat}
    cached = json.loads(saved.read_text()) if saved.is_file() else {}
    if cached.get("key") == key:
        baseline, expert = cached["random_policy"], cached["scripted_expert"]
    elif args.report:
        raise UsageError(f"{saved} not found (or measured with other flags): run the check first, then --report")
    else:  # both play the agent's episode length and action repeat, so their returns are on its scale
        baseline = reference_policy(args.env, args.random_episodes, args.seed, length, action_repeat=repeat)
        expert = reference_policy(
            args.env, min(3, args.random_episodes), args.seed, length, scripted=True, action_repeat=repeat
        )
        logdir.mkdir(parents=True, exist_ok=True)
        record = {"key": key, "random_policy": baseline, "scripted_expert": expert}
        atomic_write_bytes(saved, json.dumps(record).encode())
    print(json.dumps({"random_policy": baseline, "scripted_expert": expert}), flush=True)
    cmd = [sys.executable, "-m", "lamp.cli", "finetune", "--scratch", "--scorer.kind", "none", "--task", args.env]
    cmd += ["--configs", *configs, "--logdir", str(logdir), *flags]
    print(json.dumps({"command": " ".join(cmd[1:])}), flush=True)
    code = 0
    if not args.report:
        from lamp.lifecycle import forward_stops, run_child

        with forward_stops() as stopped:  # a stop of this script reaches the run, which saves its checkpoint
            code = run_child(cmd, cwd=root)
        if stopped:
            sys.exit(code)
    curve = task_curve(logdir / "metrics.jsonl")
    name = f"{args.env} ({args.obs}, {arm_name(args)}, seed {args.seed})"
    plot = logdir / "learning_check.png"
    plot_eval_curves(
        {name: [(r["env_steps"], r["success_rate"]) for r in curve]},
        {name: [(r["env_steps"], r["eval/return"]) for r in curve if "eval/return" in r]},
        {"random_policy": baseline, "scripted_expert": expert},
        plot,
        args.env,
        xlabel=f"env steps = decisions (x{repeat} physics frames), trained from scratch",
    )
    for row in curve:
        print(json.dumps(row), flush=True)
    highest = max((row["success_rate"] for row in curve), default=None)  # optimistic: the max of noisy evaluations
    summary = {
        "benchmark": "learning_check",
        "env": args.env,
        "obs": args.obs,
        "configs": configs,
        "flags": flags,
        "seed": args.seed,
        "env_steps": args.env_steps,
        "frames": args.env_steps * repeat,
        "action_repeat": repeat,
        "discount": cfg.agent.discount,
        "train_ratio": cfg.agent.train_ratio,
        "batch": [cfg.agent.batch_size, cfg.agent.batch_length],
        "logdir": str(logdir),
        "random_policy": baseline,
        "scripted_expert": expert,
        "last_eval_success": curve[-1]["success_rate"] if curve else None,
        "max_eval_success": highest,
        "plot": str(plot),
        "exit_code": code,
    }
    print(json.dumps(summary))
    sys.exit(code)


def task_curve(metrics: Path) -> list[dict[str, float]]:
    """One row per evaluation: env steps, updates, success and return, and the training diagnostics
    logged last before it (is the reward head right, what return does imagination expect, is the policy exploring)."""
    if not metrics.is_file():
        return []
    rows, latest = [], {}
    for line in metrics.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        latest.update({name: row[key] for name, key in TASK_DIAGNOSTICS.items() if key in row})
        if "eval/success" in row:
            point = {"env_steps": int(row["step"]), "success_rate": float(row["eval/success"])}
            for key in ("eval/return", "eval/success_sample", "eval/return_sample"):
                if key in row:
                    point[key] = row[key]
            for key, name in (("progress/updates", "updates"), ("progress/frames", "frames")):
                if key in row:
                    point[name] = int(row[key])
            if "progress/hours" in row:
                point["hours"] = round(float(row["progress/hours"]), 3)
            rows.append(point | {k: round(float(v), 4) for k, v in latest.items()})
    return rows


def main() -> None:
    import torch

    from lamp.agent.agent import Agent
    from lamp.agent.config import make_config
    from lamp.agent.replay import Replay
    from lamp.errors import UsageError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="reach")
    parser.add_argument("--size", default=None, help="size block (default: small for reach, size2m for a task)")
    parser.add_argument("--env-steps", type=int, default=20000)
    parser.add_argument("--prefill", type=int, default=None, help="random steps (default: 1000 reach, else config)")
    parser.add_argument(
        "--train-ratio", type=float, default=None, help="replayed steps per env step (default: 32 reach, else config)"
    )
    parser.add_argument(
        "--configs", nargs="*", default=[], metavar="BLOCK", help="task runs: the arm's blocks of lamp/configs.yaml"
    )
    parser.add_argument("--precision", default="auto", help="auto | float32 | bfloat16")
    parser.add_argument("--block", type=int, default=10, help="episodes per printed success rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", type=int, default=1, help="channels-last + torch.compile of the conv stacks")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument(
        "--obs", default="all", choices=["all", "state", "image"], help="observation keys the agent sees (besides lang)"
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides: agent keys (actor_grad=reinforce) or dotted keys of a task run (env.action_repeat=2)",
    )
    parser.add_argument("--logdir", default=None, help="task runs: the run directory (re-run to resume)")
    parser.add_argument("--eval-every", type=int, default=2500, help="task runs: env steps between evaluations")
    parser.add_argument("--random-episodes", type=int, default=10, help="task runs: random-policy episodes")
    parser.add_argument("--eval-episodes", type=int, default=10, help="task runs: episodes per evaluation")
    parser.add_argument(
        "--episode-length", type=int, default=None, help="task runs: decisions per episode (default: the config's)"
    )
    parser.add_argument(
        "--report", action="store_true", help="task runs: no training, print and plot what --logdir holds so far"
    )
    args = parser.parse_args()
    bad = [item for item in args.set if "=" not in item]
    if bad:
        raise UsageError(f"--set {bad[0]!r} has no '='; write KEY=VALUE, e.g. --set actor_grad=reinforce")
    if args.env != "reach":
        from envs import DOWNSTREAM_TASKS

        if args.env in DOWNSTREAM_TASKS:
            return task_check(args)
    dotted = [item for item in args.set if "." in item.split("=", 1)[0]]
    if dotted or args.configs:
        what = f"--set {dotted[0]}" if dotted else "--configs"
        raise UsageError(f"{what} is for task runs (--env push_button, ...); the reach check takes agent keys only")
    args.size = args.size or "small"
    args.train_ratio = args.train_ratio or 32.0
    args.prefill = 1000 if args.prefill is None else args.prefill

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    env = make_env(args.env)
    obs, _ = env.reset(seed=args.seed)
    lang = np.random.default_rng(args.seed).normal(size=768).astype(np.float32)  # a fixed "prompt embedding"
    space = {k: v.shape for k, v in env.observation_space.spaces.items()} | {"lang": (768,)}
    if args.obs != "all":  # drop the other observation kind (the vector-only run checks the RL part in minutes)
        space = {k: v for k, v in space.items() if k == "lang" or (k == "state") == (args.obs == "state")}
    overrides = {key: parse_value(value) for key, value in (item.split("=", 1) for item in args.set)}
    cfg = make_config(
        args.size, precision=args.precision, channels_last=bool(args.fast), compile=bool(args.fast), **overrides
    )
    agent = Agent(cfg, space)
    replay = Replay({"capacity": args.env_steps + 10, "chunk": 1024}, space, action_dim=4, seed=args.seed)
    replayed_per_update = cfg.batch_size * cfg.batch_length
    state, is_first, successes, curve, last_reward = None, True, [], [], 0.0
    episode_success, updates, owed, episode_return = False, 0, 0.0, 0.0
    returns: list[float] = []
    diagnostics: dict[str, list[float]] = {}  # learning signals averaged over each block of episodes
    random_successes: list[bool] = []
    finals: list[bool] = []  # success at the last step of the episode (reach and stay)
    random_finals: list[bool] = []
    random_returns: list[float] = []
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
        episode_return += float(reward)
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
            (random_finals if step < args.prefill else finals).append(bool(info.get("success", False)))
            (random_returns if step < args.prefill else returns).append(episode_return)
            if step >= args.prefill and len(successes) % args.block == 0:
                row = {
                    "env_steps": step + 1,
                    "updates": updates,
                    "success_rate": float(np.mean(successes[-args.block :])),
                    "final_success_rate": float(np.mean(finals[-args.block :])),
                    "episode_return": round(float(np.mean(returns[-args.block :])), 2),
                    "minutes": round((time.time() - start) / 60, 1),
                    **{k: round(float(np.mean(v)), 4) for k, v in diagnostics.items() if v},
                }
                diagnostics = {}
                curve.append(row)
                print(json.dumps(row), flush=True)
            obs, _ = env.reset()
            is_first, episode_success, state, episode_return = True, False, None, 0.0
        if step + 1 == args.prefill and random_successes:  # printed now, so a run stopped early still has it
            baseline = {
                "random_policy_episodes": len(random_successes),
                "success_rate": float(np.mean(random_successes)),
                "final_success_rate": float(np.mean(random_finals)),
                "episode_return": round(float(np.mean(random_returns)), 2),
            }
            print(json.dumps(baseline), flush=True)
        if step >= args.prefill and len(replay) >= cfg.batch_length:
            owed += args.train_ratio / replayed_per_update
            while owed >= 1:
                metrics = agent.train_step(replay.sample(cfg.batch_size, cfg.batch_length))
                for key in DIAGNOSTICS:
                    if key in metrics:
                        diagnostics.setdefault(key, []).append(float(metrics[key]))
                updates += 1
                owed -= 1
    summary = {
        "benchmark": "learning_check",
        "env": args.env,
        "size": args.size,
        "env_steps": args.env_steps,
        "updates": updates,
        "obs": args.obs,
        "overrides": overrides,
        "random_policy_success_rate": float(np.mean(random_successes)) if random_successes else None,
        "random_policy_final_success_rate": float(np.mean(random_finals)) if random_finals else None,
        "random_policy_return": float(np.mean(random_returns)) if random_returns else None,
        "last_block_success_rate": curve[-1]["success_rate"] if curve else None,
        "last_block_final_success_rate": curve[-1]["final_success_rate"] if curve else None,
        "curve": curve,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    from lamp.errors import UsageError

    try:
        main()
    except UsageError as e:  # a mistyped --env or flag: one line and exit 2, as the lamp CLI does
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
