"""A run's life as separate processes see it: kill -9 at random moments, Ctrl-C and SIGTERM, two runs on one logdir.

Every test starts real `lamp pretrain` processes on the embedded simulator at the smoke size and checks what a user
relies on: the run finishes, metrics.jsonl steps strictly increase, checkpoint and replay agree, no worker is left.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from typer.testing import CliRunner

from lamp.cli import _split_configs, app

# 30-step episodes, a checkpoint every 40 steps, replay chunks of 64 steps (so kills land on both sides of a chunk)
ARGS = [
    "pretrain",
    "--configs",
    "smoke",
    "--env.episode_length",
    "30",
    "--run.prefill",
    "40",
    "--run.log_every",
    "20",
    "--run.save_every",
    "40",
    "--run.video_every",
    "100",
    "--replay.chunk",
    "64",
    "--run.status_seconds",
    "2",
]


def start(logdir: Path, steps: int, log: Path) -> subprocess.Popen:
    """`lamp pretrain` in its own session (a process group, as a terminal or a scheduler would run it)."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "lamp.cli", *ARGS, "--logdir", str(logdir), "--run.steps", str(steps)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(condition, proc: subprocess.Popen, log: Path, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"run exited early ({proc.returncode}):\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def checkpoint_step(logdir: Path) -> int:
    path = logdir / "checkpoints/latest.pt"
    if not path.is_file():
        return -1
    return int(torch.load(path, weights_only=True)["extra"]["progress"]["env_steps"])


def metric_steps(logdir: Path) -> list[int]:
    path = logdir / "metrics.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines()] if path.is_file() else []


def children(proc: subprocess.Popen) -> list[psutil.Process]:
    return psutil.Process(proc.pid).children(recursive=True)


def assert_gone(procs: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(procs, timeout=20)
    assert not alive, f"processes left behind: {[p.pid for p in alive]}"


def assert_replay_agrees(logdir: Path) -> dict:
    """The checkpoint's replay pointer matches the chunks on disk exactly; returns the checkpoint's extra."""
    extra = torch.load(logdir / "checkpoints/latest.pt", weights_only=True)["extra"]
    end, first, chunk = extra["replay"]["end"], extra["replay"]["first_chunk"], 64
    lengths = {}
    for path in sorted((logdir / "replay").glob("chunk_*.npz")):
        with np.load(path) as data:
            lengths[int(path.stem.split("_")[1])] = len(data["reward"])
    expected = {cid: min(chunk, end - cid * chunk) for cid in range(first, -(-end // chunk))}
    assert lengths == expected, (end, lengths)
    assert end <= extra["progress"]["env_steps"]  # steps of unfinished episodes are never stored
    return extra


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_finishes_cleanly(tmp_path: Path) -> None:
    logdir, log, steps = tmp_path / "run", tmp_path / "run.log", 240
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    for _ in range(3):
        begin = max(checkpoint_step(logdir), 0)
        proc = start(logdir, steps, log)
        wait_for(lambda b=begin: checkpoint_step(logdir) > b, proc, log)  # a checkpoint of this attempt exists
        time.sleep(rng.uniform(0.0, 4.0))
        workers = children(proc)
        if proc.poll() is not None:
            break  # finished before the kill: nothing left to interrupt
        proc.send_signal(signal.SIGKILL)  # only the main process, like the OOM killer: workers must notice alone
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert_gone(workers)
    proc = start(logdir, steps, log)
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    output = log.read_text()
    assert "Traceback" not in output, (seed, output[-3000:])
    assert output.count("taking over the lock of a run that is gone") >= 1, seed
    # stdout is a file here: plain progress lines (never a bar), and no line wrapped in the middle of a path
    assert "━" not in output and f"pretrain {steps:,}/{steps:,} steps (100%) | ep " in output, output[-2000:]
    assert f"checkpoint: {logdir / 'checkpoints' / 'latest.pt'}\n" in output  # one line, however long the path
    assert any(line.startswith("replay: ") and line.endswith("MiB)") for line in output.splitlines()), output[:3000]
    assert json.loads((logdir / "done.json").read_text())["env_steps"] == steps
    metric = metric_steps(logdir)
    assert metric == sorted(set(metric)) and metric[-1] == steps, (seed, metric)  # no step twice, none re-appended
    extra = assert_replay_agrees(logdir)
    assert extra["progress"]["env_steps"] == extra["progress"]["last_save"] == steps
    assert not [p for p in logdir.rglob("*") if ".tmp" in p.name], seed
    assert (logdir / "lock").read_text() == ""
    result = CliRunner().invoke(
        app, _split_configs(["eval", "--checkpoint", str(logdir), "--task", "push_button", "--episodes", "1"])
    )
    assert result.exit_code == 0, result.output
    assert json.loads((logdir / "eval/push_button-seed0/summary.json").read_text())["episodes"] == 1


def _start_past_first_checkpoint(tmp_path: Path) -> tuple[Path, subprocess.Popen, Path]:
    logdir, log = tmp_path / "run", tmp_path / "run.log"
    proc = start(logdir, 10_000, log)
    wait_for(lambda: checkpoint_step(logdir) >= 40 and max(metric_steps(logdir), default=0) >= 60, proc, log)
    return logdir, proc, log


def _check_stopped(sig: int, logdir: Path, proc: subprocess.Popen, log: Path) -> None:
    """Send `sig` to the run's whole process group; it must save where it is, exit 128 + sig, and leave nothing."""
    workers = children(proc)
    logged = max(metric_steps(logdir))
    os.killpg(proc.pid, sig)  # a terminal's Ctrl-C, systemd or Slurm signal every process of the group
    assert proc.wait(timeout=120) == 128 + sig, log.read_text()[-3000:]
    assert_gone(workers)
    output = log.read_text()
    assert "Traceback" not in output and "Error" not in output, output[-3000:]
    step = checkpoint_step(logdir)
    assert step >= logged > 40  # saved where it stopped, not at the last periodic checkpoint
    assert f"interrupted at env step {step:,}: checkpoint saved" in output
    assert_replay_agrees(logdir)
    assert max(metric_steps(logdir)) <= step
    assert (logdir / "lock").read_text() == ""


@pytest.mark.slow
def test_second_run_on_a_live_logdir_is_refused_and_sigterm_saves(tmp_path: Path) -> None:
    logdir, proc, log = _start_past_first_checkpoint(tmp_path)
    try:
        before = sorted(p.name for p in logdir.iterdir())
        second = CliRunner().invoke(app, _split_configs([*ARGS, "--logdir", str(logdir), "--run.steps", "10000"]))
        assert second.exit_code == 2, second.output
        errors = [line for line in second.output.splitlines() if line.startswith("error:")]
        assert (
            len(errors) == 1 and f"error: {logdir} is in use by another lamp run (PID {proc.pid} on host" in errors[0]
        )
        assert sorted(p.name for p in logdir.iterdir()) == before
        _check_stopped(signal.SIGTERM, logdir, proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_ctrl_c_saves_and_exits_130(tmp_path: Path) -> None:
    logdir, proc, log = _start_past_first_checkpoint(tmp_path)
    try:
        _check_stopped(signal.SIGINT, logdir, proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_a_resume_keeps_the_recipe_it_started_with(tmp_path: Path) -> None:
    """lamp's defaults change between start and resume (here: the saved config is edited back to an older one): the
    resume trains on with the saved values, refuses a new learning value, and lets runtime keys change."""
    import yaml

    def lamp(*extra: str):
        return CliRunner().invoke(app, _split_configs([*ARGS, "--logdir", str(logdir), *extra]))

    logdir = tmp_path / "run"
    first = lamp("--run.steps", "40")
    assert first.exit_code == 0, first.output
    saved = yaml.safe_load((logdir / "config.yaml").read_text())
    saved["agent"]["discount"] = 0.997  # the default when the run started
    del saved["agent"]["repval"]  # added since
    (logdir / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    before = (logdir / "config.yaml").read_bytes()
    refused = lamp("--run.steps", "80", "--agent.discount", "0.9")
    assert refused.exit_code == 2
    errors = [line for line in refused.output.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: the run in {logdir} has agent.discount 0.997 saved and this command gives 0.9; a resume keeps the "
        "keys that change what the run learns: resume without it, or use a new --logdir"
    ]
    assert (logdir / "config.yaml").read_bytes() == before and checkpoint_step(logdir) == 40
    resumed = lamp("--run.steps", "80", "--threads", "1", "--run.log_every", "40")
    assert resumed.exit_code == 0, resumed.output
    assert "resume: keeping the run's saved agent.discount 0.997 (today's config gives 0.99)" in resumed.output
    assert "predates keys added since; they take today's defaults: agent.repval 0.0" in resumed.output
    assert "resumed from" in resumed.output and "at env step 40" in resumed.output
    now = yaml.safe_load((logdir / "config.yaml").read_text())
    assert now["agent"]["discount"] == 0.997 and now["agent"]["repval"] == 0.0  # written back, complete
    assert now["run"]["steps"] == 80 and now["run"]["log_every"] == 40 and now["threads"] == 1
    assert json.loads((logdir / "done.json").read_text())["env_steps"] == 80


@pytest.mark.slow
def test_sigterm_to_lamp_ablate_reaches_its_run_which_saves(tmp_path: Path) -> None:
    """`docker stop`, Slurm or `kill` signal the ablation's own process only: the run it started must get the stop
    too (and save), not be left running on its own; the next run of the grid does not start."""
    grid = tmp_path / "grid.yaml"
    flags = [a for a in ARGS[3:] if a != "--replay.chunk" and a != "64"]
    grid.write_text(
        json.dumps(
            {"styles": ["similar"], "seeds": [0], "tasks": ["push_button"], "configs": ["smoke"],
             "pretrain_steps": 10_000, "finetune_steps": 60, "eval_every": 60, "flags": flags}
        )
    )  # fmt: skip
    root, log = tmp_path / "runs", tmp_path / "ablate.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lamp.cli", "ablate", str(grid), "--logdir", str(root)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    run = root / "similar" / "seed0" / "pretrain"
    try:
        wait_for(lambda: checkpoint_step(run) >= 40 and max(metric_steps(run), default=0) >= 60, proc, log)
        runs = children(proc)
        logged = max(metric_steps(run))
        os.kill(proc.pid, signal.SIGTERM)  # the parent only
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM, log.read_text()[-3000:]
        assert_gone(runs)
        output = log.read_text()
        assert "Traceback" not in output and "stopped by SIGTERM" in output, output[-3000:]
        step = checkpoint_step(run)
        assert step >= logged and f"interrupted at env step {step:,}: checkpoint saved" in output
        assert (run / "lock").read_text() == "" and not (root / "similar" / "seed0" / "push_button").exists()
    finally:
        if proc.poll() is None:
            for child in children(proc):  # the runs sit in their own process groups
                child.kill()
            proc.kill()
