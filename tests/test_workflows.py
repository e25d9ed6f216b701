"""End to end on the embedded simulator with tiny sizes: pretrain -> checkpoint -> finetune -> eval, resume, broken
checkpoints and full disks; plus every bad-input case of the workflow commands (one line, exit 2, nothing written).
The ablation grid runs end to end in tests/test_ray.py (through Ray, then resumed locally)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lamp.cli import _split_configs, app

FAST = [
    "--env.episode_length",
    "30",
    "--run.prefill",
    "60",
    "--run.log_every",
    "30",
    "--run.save_every",
    "60",
    "--run.video_every",
    "90",
]


def finetune_args(source: Path, logdir: str) -> list[str]:
    return ["finetune", "--task", "push_button", "--from", str(source), "--logdir", logdir]


def lamp(args: list[str]):
    return CliRunner().invoke(app, _split_configs(args), env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("runs") / "pre"
    result = lamp(
        ["pretrain", "--configs", "smoke", "--prompts", "similar", "--logdir", str(logdir), "--run.steps", "120", *FAST]
    )
    assert result.exit_code == 0, result.output
    return logdir


@pytest.mark.slow
def test_pretrain_writes_the_run_directory(pretrained: Path) -> None:
    for name in ("config.yaml", "metrics.jsonl", "checkpoints/latest.pt", "done.json"):
        assert (pretrained / name).is_file(), name
    assert list((pretrained / "replay").glob("chunk_*.npz"))
    assert list((pretrained / "videos").glob("episode_reward_curve_*.mp4"))
    import imageio.v3 as iio

    for name in ("episode_reward_curve", "world_model_open_loop"):  # enlarged and labelled for a person to see
        video = iio.imread(sorted((pretrained / "videos").glob(f"{name}_*.mp4"))[-1])
        assert video.shape[1] >= 256 + 18, (name, video.shape)
    assert list(pretrained.glob("events.out.tfevents.*"))
    rows = [json.loads(line) for line in (pretrained / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*rows)
    assert {"vlm/reward_mean", "train/loss/model", "train/behavior/disagreement", "perf/env_fps"} <= keys
    assert {"train/behavior/intr_std", "train/behavior/extr_std", "train/behavior/intr_extr_ratio"} <= keys
    assert any(k.startswith("vlm_noun/") for k in keys) and not any(k.startswith("vlm_prompt/") for k in keys)
    done = json.loads((pretrained / "done.json").read_text())
    assert done["env_steps"] == 120 and done["updates"] > 0
    ckpt = torch.load(pretrained / "checkpoints/latest.pt", weights_only=True)
    assert ckpt["agent"]["explorer"] is True  # pretraining trains the Plan2Explore ensemble


def metric_steps(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_rerun_resumes_and_continues(pretrained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from lamp.checkpoint import Checkpointer

    copy = tmp_path / "pre"
    shutil.copytree(pretrained, copy)
    leftovers = [
        copy / "videos" / ".episode_reward_curve_000000150.k2j3h4l5.tmp.mp4",
        copy / ".config.ab12cd34.tmp.yaml",
    ]
    for path in leftovers:  # what a kill -9 in the middle of a video or config write leaves
        path.write_bytes(b"half")
    with (copy / "metrics.jsonl").open("a") as f:  # lines of steps after the checkpoint (a run killed later)
        f.write('{"step": 150, "train/loss/model": 1.0}\n{"step": 180, "tr')
    saves: list[int] = []
    original_save = Checkpointer.save
    monkeypatch.setattr(Checkpointer, "save", lambda self: (saves.append(self.progress.env_steps), original_save(self)))
    result = lamp(["pretrain", "--configs", "smoke", "--logdir", str(copy), "--run.steps", "180", *FAST])
    assert result.exit_code == 0, result.output
    assert "resumed from" in result.output and "at env step 120" in result.output
    assert json.loads((copy / "done.json").read_text())["env_steps"] == 180
    assert saves == [180]  # save_every 60: no extra save right after the resume (a stale last_save did one at 121)
    assert not any(path.exists() for path in leftovers) and "removed 2 temp file(s)" in result.output
    steps = metric_steps(copy)
    assert steps == sorted(set(steps)) and steps[-1] == 180  # the lines after step 120 were cut, then re-done
    again = lamp(["pretrain", "--configs", "smoke", "--logdir", str(copy), "--run.steps", "180", *FAST])
    assert again.exit_code == 0 and "already finished" in again.output


@pytest.mark.slow
def test_finetune_and_eval(pretrained: Path, tmp_path: Path) -> None:
    ft = tmp_path / "ft"
    result = lamp(
        [
            *finetune_args(pretrained, str(ft)),
            "--freeze",
            "critic_hidden",
            "--reset",
            "reward_head",
            "--run.steps",
            "60",
            "--run.eval_every",
            "30",
            "--run.eval_episodes",
            "2",
            "--run.eval_sample",
            "false",
        ]
    )
    assert result.exit_code == 0, result.output
    source = json.loads((ft / "source.json").read_text())
    assert source["source"] == str(pretrained.resolve()) and source["source_env_steps"] == 120
    assert len(source["config_hash"]) == 12 and source["freeze"] == ["critic_hidden"]
    evals = [json.loads(x) for x in (ft / "metrics.jsonl").read_text().splitlines() if "eval/success" in x]
    assert [e["step"] for e in evals] == [0, 30, 60] and all(0 <= e["eval/success"] <= 1 for e in evals)
    assert not any("eval/success_sample" in e for e in evals)  # run.eval_sample false: the sampled policy is not played
    steps = metric_steps(ft)
    assert steps == sorted(set(steps))  # one line per step: evaluations share the line of their step
    ckpt = torch.load(ft / "checkpoints/latest.pt", weights_only=True)
    assert ckpt["agent"]["explorer"] is False  # intr_scale 0: the ensemble is not even built
    model = ckpt["agent"]["model"]
    pre_model = torch.load(pretrained / "checkpoints/latest.pt", weights_only=True)["agent"]["model"]
    hidden = [k for k in model if k.startswith("behavior.critic.") and ".out." not in k and k.endswith("weight")]
    assert hidden and all(torch.equal(model[k], pre_model[k]) for k in hidden)  # linear probe: frozen hidden layers
    assert "finished fine-tuning on push_button: 60 env steps" in result.output  # the end-of-job summary
    assert "last evaluation (env step 60, 2 episodes): success" in result.output
    assert f"next: lamp eval --checkpoint {ft} --episodes 20" in result.output
    out = tmp_path / "eval"
    ckpt_file = ft / "checkpoints" / "latest.pt"  # a checkpoint file inside the run; the task is the run's own
    result = lamp(["eval", "--checkpoint", str(ckpt_file), "--episodes", "2", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "episode 1/2 (seed 3): " in result.output and "episode 2/2 (seed 4): " in result.output
    assert "push_button: success " in result.output
    bad = lamp(["eval", "--checkpoint", str(ft), "--device", "cuda:7", "--episodes", "1", "--out", str(tmp_path / "x")])
    errors = [line for line in bad.output.splitlines() if line.startswith("error:")]
    assert bad.exit_code == 2 and len(errors) == 1 and "--device" in errors[0] and "Traceback" not in bad.output
    pre_eval = lamp(["eval", "--checkpoint", str(pretrained), "--episodes", "1", "--out", str(tmp_path / "y")])
    assert pre_eval.exit_code == 2 and "is a pretraining run: pass --task" in pre_eval.output
    episodes = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert [e["seed"] for e in episodes] == [3, 4] and all(e["length"] == 30 for e in episodes)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 2 and len(summary["success_ci95"]) == 2
    videos = sorted((out / "videos").glob("*.mp4"))
    assert len(videos) == 2
    import imageio.v3 as iio

    # the plain front camera at the scorer's size: what `lamp score` reads as training scored it
    assert iio.imread(videos[0], index=None).shape[1:] == (128, 128, 3)
    assert not (out / "metrics.jsonl").exists()  # eval writes its own JSONL, no empty metrics file


@pytest.mark.slow
@pytest.mark.parametrize(("size", "expected"), [(64, 128), (128, 128)])
def test_scorer_scores_128_px_frames_and_the_replay_keeps_the_agents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, expected: int
) -> None:
    import numpy as np

    from lamp.scorers.base import FrameScorer

    shapes = []
    original = FrameScorer.score_episode

    def spy(self, frames, prompt):
        shapes.append(frames.shape[1:])
        return original(self, frames, prompt)

    monkeypatch.setattr(FrameScorer, "score_episode", spy)
    logdir = tmp_path / "pre"
    args = ["pretrain", "--configs", "smoke", "--logdir", str(logdir), "--env.size", str(size), "--run.steps", "60"]
    result = lamp([*args, *FAST])
    assert result.exit_code == 0, result.output
    assert shapes and set(shapes) == {(expected, expected, 3)}
    chunk = np.load(sorted((logdir / "replay").glob("chunk_*.npz"))[0])
    assert chunk["image"].shape[1:] == (size, size, 3) and "score_image" not in chunk.files


@pytest.mark.slow
def test_p2e_pretraining_builds_no_scorer_and_finetunes_without_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from lamp import scorers

    def no_scorer(*args, **kwargs):
        raise AssertionError("a scorer was built for a Plan2Explore-only run")

    monkeypatch.setattr(scorers, "tiny_random_scorer", no_scorer)
    pre, ft = tmp_path / "pre", tmp_path / "ft"
    result = lamp(["pretrain", "--configs", "smoke", "p2e", "--logdir", str(pre), "--run.steps", "60", *FAST])
    assert result.exit_code == 0, result.output
    chunk = np.load(sorted((pre / "replay").glob("chunk_*.npz"))[0])
    assert "lang" not in chunk.files and not chunk["reward"].any()  # no language, no extrinsic reward
    ckpt = torch.load(pre / "checkpoints/latest.pt", weights_only=True)["agent"]
    assert "lang" not in ckpt["obs_space"] and ckpt["explorer"] is True
    result = lamp([*finetune_args(pre, str(ft)), "--run.steps", "60", "--run.eval_every", "60", *FAST[:4]])
    assert result.exit_code == 0, result.output
    assert "without language" in result.output
    out = lamp(
        ["eval", "--checkpoint", str(ft), "--task", "push_button", "--episodes", "1", "--out", str(tmp_path / "e")]
    )
    assert out.exit_code == 0, out.output
    monkeypatch.undo()  # a scorer may be built now: fine-tuning the language-free agent with one is refused
    bad = lamp([*finetune_args(pre, str(tmp_path / "bad")), "--scorer.kind", "tiny"])
    assert bad.exit_code == 2 and "pretrained without language" in bad.output and "--scorer.kind none" in bad.output
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_finetune_from_scratch(tmp_path: Path) -> None:
    ft = tmp_path / "ft"
    args = ["finetune", "--task", "push_button", "--scratch", "--configs", "smoke", "--logdir", str(ft)]
    result = lamp([*args, "--run.steps", "90", "--run.eval_every", "90", "--run.eval_episodes", "1", *FAST[:4]])
    assert result.exit_code == 0, result.output
    assert json.loads((ft / "source.json").read_text()) == {"source": None, "scratch": True, "freeze": [], "reset": []}
    assert json.loads((ft / "done.json").read_text())["updates"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "push_button"], "pass --from DIR (a lamp pretrain run) or --scratch (no pretraining)"),
        (
            ["--task", "push_button", "--scratch", "--freeze", "critic_hidden"],
            "--freeze/--reset act on pretrained weights; leave them out with --scratch",
        ),
    ],
)
def test_finetune_source_errors(tmp_path: Path, args: list[str], message: str) -> None:
    logdir = tmp_path / "ft"
    result = lamp(["finetune", *args, "--configs", "smoke", "--logdir", str(logdir)])
    assert result.exit_code == 2 and f"error: {message}" in result.output and "Traceback" not in result.output
    assert not logdir.exists()


def test_pretraining_without_a_scorer_needs_no_extrinsic_weight(tmp_path: Path) -> None:
    logdir = tmp_path / "pre"
    result = lamp(["pretrain", "--configs", "smoke", "--scorer.kind", "none", "--logdir", str(logdir)])
    assert result.exit_code == 2 and "but agent.expl.extr_scale is 0.1" in result.output
    assert not logdir.exists()


def critic_hidden_equal(run: Path, pretrained: Path) -> bool:
    model = torch.load(run / "checkpoints/latest.pt", weights_only=True)["agent"]["model"]
    pre_model = torch.load(pretrained / "checkpoints/latest.pt", weights_only=True)["agent"]["model"]
    hidden = [k for k in model if k.startswith("behavior.critic.") and not k.startswith("behavior.critic.out.")]
    assert hidden
    return all(torch.equal(model[k], pre_model[k]) for k in hidden)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["option", "flag"])
def test_linear_probe_survives_resume(pretrained: Path, tmp_path: Path, how: str) -> None:
    """--freeze (or --finetune.freeze in flags, as `lamp ablate` may pass it) still holds after a resume."""
    ft = tmp_path / "ft"
    freeze = ["--freeze", "critic_hidden"] if how == "option" else ["--finetune.freeze", "[critic_hidden]"]
    common = [*finetune_args(pretrained, str(ft)), *freeze, "--run.eval_every", "1000", "--run.eval_episodes", "1"]
    first = lamp([*common, *FAST, "--run.steps", "90"])
    assert first.exit_code == 0, first.output
    assert critic_hidden_equal(ft, pretrained)
    resumed = lamp([*common, *FAST, "--run.steps", "150"])
    assert resumed.exit_code == 0 and "resumed from" in resumed.output, resumed.output
    assert json.loads((ft / "done.json").read_text())["updates"] > 0
    assert critic_hidden_equal(ft, pretrained)  # the resumed run trained only the critic's output layer


@pytest.mark.slow
def test_paper_arms_end_to_end_at_smoke_size(tmp_path: Path) -> None:
    """prompts/paper.yaml's format with all five arms at smoke budgets: every arm runs and reaches the summary; the
    clip arm loads a tiny random CLIP through the real Hugging Face path and fine-tunes with it, lang_only builds no
    ensemble, p2e and scratch have no language input."""
    import torch
    import yaml

    from lamp.prompts import prompts_dir
    from lamp.scorers.tiny import save_tiny_clip

    arms = ["lamp", "p2e", "lang_only", "clip", "scratch"]
    spec = yaml.safe_load((prompts_dir() / "paper.yaml").read_text())
    spec.update(
        arms=arms,
        seeds=[0],
        tasks=["push_button"],
        configs=["smoke"],
        pretrain_steps=60,
        finetune_steps=60,
        eval_every=30,
        budgets=[60],
        flags=["--env.episode_length", "30", "--run.prefill", "30", "--run.eval_episodes", "1",
               "--scorer.clip_model", str(save_tiny_clip(tmp_path / "tiny_clip"))],
    )  # fmt: skip
    path = tmp_path / "paper.yaml"
    path.write_text(json.dumps(spec))
    grid = tmp_path / "grid"
    cmd = [sys.executable, "-m", "lamp.cli", "ablate", str(path), "--logdir", str(grid), "--parallel", "2"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "5 jobs (5 arms x 1 seeds), 9 runs" in result.stdout
    rows = (grid / "summary.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == arms
    assert not (grid / "scratch" / "seed0" / "pretrain").exists()
    assert json.loads((grid / "scratch" / "seed0" / "push_button" / "source.json").read_text())["scratch"] is True
    md = (grid / "summary.md").read_text()
    assert all(f"| {arm} |" in md for arm in arms)

    def agent(arm: str, run: str) -> dict:
        ckpt = torch.load(grid / arm / "seed0" / run / "checkpoints" / "latest.pt", weights_only=True)
        return ckpt["agent"]

    for run in ("pretrain", "push_button"):
        clip_cfg = yaml.safe_load((grid / "clip" / "seed0" / run / "config.yaml").read_text())
        assert clip_cfg["scorer"]["kind"] == "clip"
        assert tuple(agent("clip", run)["obs_space"]["lang"]) == (16,)  # the tiny CLIP's text embedding, not R3M's
    assert agent("lang_only", "pretrain")["explorer"] is False and agent("lamp", "pretrain")["explorer"] is True
    assert all("lang" not in agent(arm, "push_button")["obs_space"] for arm in ("p2e", "scratch"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pretrain", "--configs", "smoke", "--prompts", "nosuchstyle"], "prompt file 'nosuchstyle' does not exist"),
        (["pretrain", "--configs", "smoke", "--agent.actor_grad", "foo"], "agent.actor_grad is 'foo'; valid: dynamics"),
        (["finetune", "--task", "fly", "--from", "."], "unknown task 'fly'; valid tasks: push_button"),
        (["finetune", "--task", "push_button", "--from", "/nonexistent"], "--from '/nonexistent' is not a folder"),
        (["finetune", "--task", "push_button", "--from", "."], "is not a lamp run (needs config.yaml"),
        (["eval", "--checkpoint", ".", "--task", "push_button"], "is not a lamp run (needs config.yaml"),
        (
            ["ablate", "/no/such/ablation.yaml", "--logdir", "x"],
            "ablation file '/no/such/ablation.yaml' does not exist",
        ),
    ],
)
def test_workflow_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = lamp([*args, "--logdir", str(tmp_path / "out")] if args[0] == "pretrain" else args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert not (tmp_path / "out").exists()


def test_style_file_errors_reach_the_cli(tmp_path: Path) -> None:
    bad = tmp_path / "style.yaml"
    bad.write_text("templates: ['pick up the {noun}']\n")
    result = lamp(["pretrain", "--configs", "smoke", "--prompts", str(bad), "--logdir", str(tmp_path / "out")])
    assert result.exit_code == 2 and "has noun placeholders but no noun lists; add 'nouns:'" in result.output
    bad.write_text("name: empty\n")
    result = lamp(["pretrain", "--configs", "smoke", "--prompts", str(bad), "--logdir", str(tmp_path / "out")])
    assert result.exit_code == 2 and "has no templates" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_finetune_refuses_a_checkpoint_of_another_config(pretrained: Path, tmp_path: Path) -> None:
    result = lamp(
        [
            *finetune_args(pretrained, str(tmp_path / "ft")),
            "--agent.deter",
            "48",
            "--run.steps",
            "30",
        ]
    )
    assert result.exit_code == 2
    assert "was trained with another architecture (agent.deter: checkpoint 32 vs config 48)" in result.output
    assert not (tmp_path / "ft").exists()
    resumed = lamp(["pretrain", "--configs", "smoke", "--logdir", str(pretrained), "--agent.units", "24"])
    assert resumed.exit_code == 2 and "has agent.units 16 saved and this command gives 24;" in resumed.output
    assert "units: 16" in (pretrained / "config.yaml").read_text()  # the run's saved config is untouched


@pytest.mark.slow
def test_nan_losses_stop_training_with_one_line(pretrained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import shutil

    from lamp.agent import agent as agent_module

    def nan_step(self, data):
        raise agent_module.TrainingStopped("training stopped: loss model was NaN/inf for 3 steps in a row")

    monkeypatch.setattr(agent_module.Agent, "train_step", nan_step)
    copy = tmp_path / "pre"
    shutil.copytree(pretrained, copy)
    before = (copy / "checkpoints/latest.pt").stat().st_mtime_ns
    result = lamp(["pretrain", "--configs", "smoke", "--logdir", str(copy), "--run.steps", "240", *FAST])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "loss model was NaN/inf for 3 steps in a row" in errors[0]
    assert (copy / "checkpoints/latest.pt").stat().st_mtime_ns > before  # the last good state was saved


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "cut" else bytes(len(data)))


@pytest.mark.slow
def test_broken_checkpoint_is_one_line_then_previous_is_used(pretrained: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "pre"
    shutil.copytree(pretrained, copy)
    assert torch.load(copy / "checkpoints/previous.pt", weights_only=True)["extra"]["progress"]["env_steps"] == 60
    latest = copy / "checkpoints/latest.pt"
    good = latest.read_bytes()
    previous = (copy / "checkpoints/previous.pt").read_bytes()
    (copy / "checkpoints/previous.pt").unlink()
    commands = {
        "resume": ["pretrain", "--configs", "smoke", "--logdir", str(copy), "--run.steps", "180", *FAST],
        "finetune": [*finetune_args(copy, str(tmp_path / "ft")), "--run.steps", "30"],
        "eval": ["eval", "--checkpoint", str(copy), "--task", "push_button", "--episodes", "1"],
    }
    for how in ("cut", "zeros"):  # cut in half (a copy that stopped) and zero-filled (a crash before the data landed)
        latest.write_bytes(good)
        damage(latest, how)
        before = sorted((p.name, p.stat().st_mtime_ns) for p in copy.rglob("*"))
        for name, args in commands.items():
            result = lamp(args)
            assert result.exit_code == 2, (how, name, result.output)
            errors = [line for line in result.output.splitlines() if line.startswith("error:")]
            assert len(errors) == 1, (how, name, result.output)
            assert errors[0].startswith(f"error: checkpoint {latest} cannot be read (cut short or corrupt"), errors
            assert "there is no checkpoints/previous.pt to fall back to" in errors[0] and "new --logdir" in errors[0]
        assert sorted((p.name, p.stat().st_mtime_ns) for p in copy.rglob("*")) == before  # nothing was written
        assert not (tmp_path / "ft").exists()
    (copy / "checkpoints/previous.pt").write_bytes(previous)
    result = lamp(commands["eval"])
    assert result.exit_code == 0 and f"using {copy / 'checkpoints/previous.pt'} instead" in result.output
    result = lamp(commands["resume"])
    assert result.exit_code == 0, result.output
    assert "WARNING: checkpoint" in result.output and "resumed from" in result.output
    assert "at env step 60" in result.output and (copy / "checkpoints/latest.unreadable.pt").is_file()
    assert json.loads((copy / "done.json").read_text())["env_steps"] == 180
    steps = metric_steps(copy)
    assert steps == sorted(set(steps))


def test_disk_check_counts_the_runs_own_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import collections
    import shutil

    real = shutil.disk_usage
    free = {"bytes": 200 * 2**20}

    def small_disk(path):
        return collections.namedtuple("usage", "total used free")(real(path).total, 0, free["bytes"])

    monkeypatch.setattr(shutil, "disk_usage", small_disk)
    monkeypatch.setattr("lamp.loop.train_loop", lambda *args: None)  # the check is all this test needs of the run
    # default replay.capacity is 1M steps (11.7 GiB), but a 1,000-step smoke run stores at most 1,000 (12 MiB)
    result = lamp(["pretrain", "--configs", "smoke", "--logdir", str(tmp_path / "ok")])
    assert result.exit_code == 0, result.output
    assert "× 1,000 steps (min of replay.capacity 1,000,000 and run.steps 1,000)" in result.output
    free["bytes"] = 2**20
    result = lamp(["pretrain", "--configs", "smoke", "--logdir", str(tmp_path / "full")])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "error: replay needs 0.0 GiB disk in" in errors[0] and "GiB is free" in errors[0]
    assert not (tmp_path / "full").exists()  # refused before config.yaml or a TensorBoard file was written


@pytest.mark.slow
def test_disk_full_at_the_final_save_is_one_line_and_keeps_the_checkpoint(
    pretrained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os
    import shutil

    copy = tmp_path / "pre"
    shutil.copytree(pretrained, copy)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the disk fills while the new checkpoint's data is flushed to it
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(copy / "checkpoints" / ".latest.")):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = lamp(["pretrain", "--configs", "smoke", "--logdir", str(copy), "--run.steps", "180", *FAST])
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert f"error: the disk of {copy} is full ([Errno 28] No space left on device)" in errors[0]
    assert f"the last good checkpoint is {copy / 'checkpoints/latest.pt'}" in errors[0] and "re-run" in errors[0]
    ckpt = torch.load(copy / "checkpoints/latest.pt", weights_only=True)
    assert ckpt["extra"]["progress"]["env_steps"] == 120  # the last good checkpoint, intact
    assert not [p for p in copy.rglob("*") if ".tmp" in p.name]
    assert json.loads((copy / "done.json").read_text())["env_steps"] == 120  # not marked finished


@pytest.mark.slow
def test_time_based_checkpoints(pretrained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from lamp import loop as training_loop
    from lamp.checkpoint import Checkpointer

    copy = tmp_path / "pre"
    shutil.copytree(pretrained, copy)
    clock = {"now": 0.0}
    monkeypatch.setattr("lamp.checkpoint.monotonic", lambda: clock["now"])
    saves: list[int] = []
    original_save, original_train = Checkpointer.save, training_loop.train_updates
    monkeypatch.setattr(Checkpointer, "save", lambda self: (saves.append(self.progress.env_steps), original_save(self)))

    def train(agent, replay, progress, *args) -> None:
        clock["now"] += 10.0 if progress.env_steps in (130, 140) else 0.0  # two slow steps of 10 s
        original_train(agent, replay, progress, *args)

    monkeypatch.setattr(training_loop, "train_updates", train)
    args = ["pretrain", "--configs", "smoke", "--logdir", str(copy), "--run.steps", "150", *FAST]
    result = lamp([*args, "--run.save_every", "1000", "--run.save_minutes", str(15 / 60)])
    assert result.exit_code == 0, result.output
    assert saves == [140, 150]  # 20 s since the resume passed 15 s at step 140; then the final save


@pytest.mark.slow
def test_a_run_folder_keeps_its_identity(pretrained: Path, tmp_path: Path) -> None:
    """A finished push_button fine-tune is not resumed as another task, another source, from scratch or as a
    pretraining run: each is one line naming both sides and the fix, and nothing in the folder changes."""
    ft = tmp_path / "ft"
    first = lamp([*finetune_args(pretrained, str(ft)), "--run.steps", "30", "--run.eval_every", "1000", *FAST[:4]])
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in ft.iterdir() if p.is_file()}
    for args, says in (
        (
            ["finetune", "--task", "turn_tap", "--from", str(pretrained)],
            "env.task push_button saved and this command gives turn_tap",
        ),
        (["finetune", "--task", "push_button", "--scratch"], "finetune.source"),
        (["pretrain", "--configs", "smoke"], "holds a fine-tuning run"),
    ):
        result = lamp([*args, "--logdir", str(ft), "--run.steps", "60"])
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert result.exit_code == 2 and len(errors) == 1 and says in errors[0], result.output
        assert "new --logdir" in errors[0], errors[0]
    assert {p.name: p.read_bytes() for p in ft.iterdir() if p.is_file()} == before
