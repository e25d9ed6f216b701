"""Why does (or doesn't) a fine-tuning run learn? Diagnostics of its latest checkpoint on fresh episodes, as JSON.

Runs `--episodes` held-out episodes of the run's task with the deterministic policy (seeds the run never trained or
evaluated on), then replays them through the world model and reports:
- reward head vs the true reward at every step (posterior states): error, correlation;
- open-loop predictions from a few context points, driven by the recorded actions: reward and image error per
  horizon step, next to the posterior reconstruction's image error (what the model can do with the frame in view);
- imagined vs real returns: from each real state, the actor imagines `horizon` steps (its mode, like the episode) and
  the world model's discounted reward sum is compared with the real one over the same steps; and the critic's value
  against the real discounted return-to-go;
- the actor: mean standard deviation of its action distribution on the real states, and the last logged entropy.

    python benchmarks/diagnose.py runs/transfer_check/scratch/seed0/push_button --episodes 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HELD_OUT_SEED = 900_000_000  # above training (seed + restarts) and evaluation (seed + 10000 + env step + k) seeds


def collect(agent: Any, envs: Any, lang: np.ndarray | None, seed: int) -> dict[str, np.ndarray]:
    """One deterministic-policy episode in the replay's layout: step t holds obs_t, the action taken at t and the
    reward received on arriving at obs_t (0 at t = 0)."""
    obs, _ = envs.reset(seed=seed)
    steps: list[dict[str, np.ndarray]] = []
    state, reward, success, done = None, 0.0, False, False
    extra = {} if lang is None else {"lang": np.asarray(lang, np.float32)[None]}
    while True:
        step_obs = {k: v[0] for k, v in obs.items()} | {k: v[0] for k, v in extra.items()}
        if done:
            steps.append({**step_obs, "action": np.zeros(agent.cfg.action_dim, np.float32), "reward": reward})
            break
        batch = {**obs, **extra, "is_first": np.array([not steps])}
        action, state = agent.policy(batch, state, mode="eval")
        steps.append({**step_obs, "action": action[0], "reward": reward})
        obs, rewards, terminated, truncated, infos = envs.step(action)
        reward, done = float(rewards[0]), bool(terminated[0] or truncated[0])
        success |= bool(infos[0].get("success", False))
    episode = {k: np.stack([np.asarray(s[k]) for s in steps]) for k in steps[0]}
    episode["reward"] = episode["reward"].astype(np.float32)
    episode["is_first"] = np.arange(len(steps)) == 0
    episode["success"] = np.array(success)
    return episode


def discounted_sums(reward: np.ndarray, discount: float, horizon: int | None) -> np.ndarray:
    """For each t, sum_k discount^k r_{t+1+k} over the next `horizon` rewards (all remaining if None)."""
    out = np.zeros(len(reward) - 1)
    for t in range(len(reward) - 1):
        future = reward[t + 1 : len(reward) if horizon is None else t + 1 + horizon]
        out[t] = float((discount ** np.arange(len(future)) * future).sum())
    return out


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")


def analyse(agent: Any, episode: dict[str, np.ndarray], horizon: int, contexts: list[int]) -> dict[str, Any]:
    import torch

    wm, cfg = agent.world_model, agent.cfg
    data = agent.to_tensors({k: v[None] for k, v in episode.items() if k in agent.obs_space or k in ("action",)})
    is_first = torch.as_tensor(episode["is_first"][None], device=agent.device)
    with torch.no_grad():
        embed = wm.encode(data)
        post = wm.rssm.observe(embed, wm.prev_actions(data["action"].float()), is_first)
        feat = wm.feat(post["stoch"], post["deter"])[0]  # (T, F)
        lang = data.get("lang")
        lang = None if lang is None else lang[0]
        true_reward = episode["reward"]
        pred_reward = wm.reward(feat).float().cpu().numpy()
        inp = agent._ac_input(feat, lang)
        value = agent.behavior.value(inp).float().cpu().numpy()
        actor_std = float(agent.behavior.dist(inp).std.mean())
        # images: posterior reconstruction vs open loop
        target = None
        if wm.image_keys:
            target = torch.cat([data[k] for k in wm.image_keys], -1)[0].float() / 255.0 - 0.5  # (T, H, W, C)

        def image_error(feats: torch.Tensor, index: slice) -> np.ndarray:
            pred = wm.image_decoder(feats).float().reshape(target[index].shape)
            return ((pred - target[index]) ** 2).mean((-3, -2, -1)).cpu().numpy()

        recon = image_error(feat, slice(None)) if target is not None else None
        open_reward_err, open_image_err = [], []
        for c in contexts:
            if c + horizon >= len(true_reward):
                continue
            stoch, deter = post["stoch"][:, c], post["deter"][:, c]
            feats = []
            for t in range(c + 1, c + 1 + horizon):  # a_{t-1} drives the step into t
                stoch, deter = wm.rssm.imagine_step(stoch, deter, data["action"][:, t - 1].float())
                feats.append(wm.feat(stoch, deter)[0])
            feats_t = torch.stack(feats)
            predicted = wm.reward(feats_t).float().cpu().numpy()
            open_reward_err.append(np.abs(predicted - true_reward[c + 1 : c + 1 + horizon]))
            if target is not None:
                open_image_err.append(image_error(feats_t, slice(c + 1, c + 1 + horizon)))
        # the actor's own imagination from every real state vs the real rewards over the same steps
        stoch, deter = post["stoch"][0], post["deter"][0]
        imagined = torch.zeros(len(true_reward), device=agent.device)
        weight = 1.0
        for _ in range(horizon):
            act = agent.behavior.dist(agent._ac_input(wm.feat(stoch, deter), lang)).mode().clamp(-1, 1)
            stoch, deter = wm.rssm.imagine_step(stoch, deter, act)
            imagined += weight * wm.reward(wm.feat(stoch, deter)).float()
            weight *= cfg.discount
        imagined = imagined.cpu().numpy()
    last = len(true_reward) - 1 - horizon  # states with a full real horizon after them
    real_h = discounted_sums(true_reward, cfg.discount, horizon)[:last]
    real_to_go = discounted_sums(true_reward, cfg.discount, None)
    half = len(real_to_go) // 2  # the return-to-go is cut by the time limit near the end; compare the first half
    out = {
        "success": bool(episode["success"]),
        "return": float(true_reward[1:].sum()),
        "reward_true_mean": float(true_reward[1:].mean()),
        "reward_true_std": float(true_reward[1:].std()),
        "reward_head_mae": float(np.abs(pred_reward[1:] - true_reward[1:]).mean()),
        "reward_head_corr": corr(pred_reward[1:], true_reward[1:]),
        "imagined_return_h": float(imagined[:last].mean()),
        "real_return_h": float(real_h.mean()),
        "imagined_vs_real_corr": corr(imagined[:last], real_h),
        "value_first_half": float(value[:half].mean()),
        "real_return_to_go_first_half": float(real_to_go[:half].mean()),
        "value_vs_return_to_go_corr": corr(value[:half], real_to_go[:half]),
        "actor_std": actor_std,
    }
    if open_reward_err:
        err = np.stack(open_reward_err)
        out["open_loop_reward_mae_by_step"] = [round(float(v), 3) for v in err.mean(0)]
    if open_image_err:
        out["open_loop_image_mse_by_step"] = [round(float(v), 5) for v in np.stack(open_image_err).mean(0)]
        out["posterior_image_mse"] = float(recon.mean())
    return out


def main() -> None:
    from lamp.build import instruction_embedding, lang_dim, make_envs, make_scorer, obs_space, task_instruction
    from lamp.config import build_config, load_saved_config
    from lamp.errors import UsageError
    from lamp.rundir import find_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a lamp fine-tuning run directory")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--contexts", type=int, nargs="*", default=[10, 50, 100], help="open-loop start steps")
    args = parser.parse_args()

    def run() -> None:
        import torch

        from lamp.agent.agent import Agent

        def log(message: str) -> None:  # stdout carries only the JSON lines
            print(message, file=sys.stderr)

        run_dir = Path(args.run).expanduser()
        found = find_checkpoint(run_dir, log) if (run_dir / "config.yaml").is_file() else None
        if found is None:
            raise UsageError(f"'{run_dir}' is not a lamp run with a checkpoint (needs config.yaml and a checkpoint)")
        if args.episodes < 1:
            raise UsageError(f"--episodes must be at least 1, got {args.episodes}")
        cfg = build_config(base=load_saved_config(run_dir), overrides={"env.workers": 1})
        if cfg.env.task == "pretrain":  # no task reward to hold the reward head against
            raise UsageError(f"'{run_dir}' is a pretraining run; diagnose a fine-tuning run (lamp finetune --logdir)")
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        scorer = make_scorer(cfg, log)
        envs = make_envs(cfg, workers=1, seed=args.seed)
        try:
            lang = instruction_embedding(scorer, task_instruction(cfg))
            agent = Agent(cfg.agent, obs_space(envs.single_observation_space, lang_dim(scorer)), device=cfg.device)
            agent.load(found[0])
            agent.eval()
            rows = []
            for k in range(args.episodes):
                episode = collect(agent, envs, lang, args.seed + k)
                rows.append(analyse(agent, episode, int(cfg.agent.horizon), args.contexts))
                print(json.dumps({"episode": k, **rows[-1]}), flush=True)
        finally:
            envs.close()
        keys = [k for k, v in rows[0].items() if isinstance(v, float | bool | int)]
        summary = {k: float(np.nanmean([float(r[k]) for r in rows])) for k in keys}
        for k in ("open_loop_reward_mae_by_step", "open_loop_image_mse_by_step"):
            if k in rows[0]:
                summary[k] = [round(float(v), 5) for v in np.mean([r[k] for r in rows], 0)]
        logged = last_logged(run_dir / "metrics.jsonl", ("train/behavior/entropy", "progress/updates", "step"))
        print(json.dumps({"diagnose": str(run_dir), "checkpoint": str(found[0]), "episodes": args.episodes,
                          "last_logged": logged, **summary}))  # fmt: skip

    try:
        run()
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def last_logged(path: Path, keys: tuple[str, ...]) -> dict[str, float]:
    """The latest value of each key in a run's metrics.jsonl."""
    out: dict[str, float] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            out |= {k: row[k] for k in keys if k in row}
    return out


if __name__ == "__main__":
    main()
