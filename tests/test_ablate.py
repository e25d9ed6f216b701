"""`lamp ablate` planning, resume-by-skipping, parallel runs and the summary files (with synthetic run outputs)."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from lamp import ablate as A
from lamp.config import build_config
from lamp.errors import UsageError


def write_ablation(tmp_path: Path, **overrides) -> Path:
    data = {
        "styles": ["similar", "shakespeare"],
        "seeds": [0, 1],
        "tasks": ["push_button", "turn_tap"],
        "configs": ["smoke"],
        "pretrain_steps": 100,
        "finetune_steps": 40,
        "eval_every": 10,
        "budgets": [20, 40],
    }
    data.update(overrides)
    path = tmp_path / "ablation.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def test_shipped_ablation_file_names_real_styles() -> None:
    from lamp.prompts import prompts_dir

    data = yaml.safe_load((prompts_dir() / "ablation.yaml").read_text())
    assert len(data["styles"]) == 6
    for style in data["styles"]:
        assert (prompts_dir() / f"{style}.yaml").is_file()


def test_plan_builds_pretrain_then_finetune_commands(tmp_path: Path) -> None:
    ablation = A.Ablation.load(write_ablation(tmp_path))
    jobs = A.plan(ablation, tmp_path / "grid")
    assert [(j.arm, j.seed) for j in jobs] == [("similar", 0), ("similar", 1), ("shakespeare", 0), ("shakespeare", 1)]
    run_dir, args = jobs[0].commands[0]
    assert run_dir == tmp_path / "grid" / "similar" / "seed0" / "pretrain"
    assert args[:3] == ["pretrain", "--configs", "smoke"] and "--prompts" in args and "--seed" in args
    assert args[args.index("--run.steps") + 1] == "100"
    ft_dir, ft_args = jobs[0].commands[1]
    assert ft_dir.name == "push_button"
    assert ft_args[ft_args.index("--from") + 1] == str(run_dir)
    assert ft_args[ft_args.index("--run.eval_every") + 1] == "10"


def test_finetuning_uses_the_critic_linear_probe_unless_the_file_says_otherwise(tmp_path: Path) -> None:
    def freezes(path: Path) -> list[list[str]]:
        jobs = A.plan(A.Ablation.load(path), tmp_path / "grid")
        finetunes = [args for job in jobs for _, args in job.commands if args[0] == "finetune"]
        return [[args[i + 1] for i, a in enumerate(args) if a == "--freeze"] for args in finetunes]

    assert set(map(tuple, freezes(write_ablation(tmp_path)))) == {("critic_hidden",)}  # LAMP's default
    assert set(map(tuple, freezes(write_ablation(tmp_path, freeze=[])))) == {()}
    pre = A.plan(A.Ablation.load(write_ablation(tmp_path)), tmp_path / "grid")[0].commands[0][1]
    assert "--freeze" not in pre  # pretraining has nothing to freeze


def test_finished_runs_are_skipped_and_failures_stop_the_job(tmp_path: Path) -> None:
    ablation = A.Ablation.load(write_ablation(tmp_path, seeds=[0], styles=["similar"]))
    job = A.plan(ablation, tmp_path / "grid")[0]
    calls: list[list[str]] = []

    def runner(args: list[str]) -> int:
        calls.append(args)
        run_dir = Path(args[args.index("--logdir") + 1])
        run_dir.mkdir(parents=True, exist_ok=True)
        steps = int(args[args.index("--run.steps") + 1])
        (run_dir / A.DONE_FILE).write_text(json.dumps({"env_steps": steps}))
        return 0

    assert A.run_job(job, runner) == {"arm": "similar", "seed": 0, "ok": True, "ran": 3, "skipped": 0}
    assert A.run_job(job, runner)["skipped"] == 3 and len(calls) == 3  # a second run does nothing
    (job.commands[2][0] / A.DONE_FILE).unlink()  # one fine-tuning run was interrupted
    result = A.run_job(job, runner)
    assert result["ran"] == 1 and calls[-1][0] == "finetune" and calls[-1][calls[-1].index("--task") + 1] == "turn_tap"
    (job.commands[1][0] / A.DONE_FILE).unlink()
    (job.commands[2][0] / A.DONE_FILE).unlink()
    failed = A.run_job(job, lambda args: 3)
    assert failed["ok"] is False and failed["code"] == 3 and failed["ran"] == 1  # the second task never started


def test_parallel_runs_use_several_workers(tmp_path: Path) -> None:
    ablation = A.Ablation.load(write_ablation(tmp_path))
    jobs = A.plan(ablation, tmp_path / "grid")
    threads, barrier = set(), threading.Barrier(2, timeout=10)

    def runner(args: list[str]) -> int:
        threads.add(threading.get_ident())
        if args[0] == "pretrain":
            barrier.wait()  # only passes if two jobs run at the same time
        return 0

    results = A.run_grid(jobs[:2], parallel=2, runner=runner)
    assert all(r["ok"] for r in results) and len(threads) == 2


def fake_finetune_metrics(run_dir: Path, successes: list[float], every: int) -> None:
    run_dir.mkdir(parents=True)
    lines = []
    for i, s in enumerate(successes, start=1):
        lines.append(json.dumps({"step": i * every - 3, "train/loss": 1.0}))
        lines.append(json.dumps({"step": i * every, "eval/success": s}))
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n{broken")


def test_summary_files(tmp_path: Path) -> None:
    ablation = A.Ablation.load(write_ablation(tmp_path))
    grid = tmp_path / "grid"
    for seed in (0, 1):
        for task in ("push_button", "turn_tap"):
            fake_finetune_metrics(grid / "similar" / f"seed{seed}" / task, [0.0, 0.5, 1.0, 1.0], 10)
            fake_finetune_metrics(grid / "shakespeare" / f"seed{seed}" / task, [0.0, 0.0, 0.1 * seed, 0.2], 10)
    paths = A.summarize(ablation, grid)
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == 2 * 2 * 2 * 2
    similar_20 = [float(r["success"]) for r in rows if r["arm"] == "similar" and r["budget"] == "20"]
    assert similar_20 == [0.5] * 4
    md = paths["md"].read_text()
    section_20 = md.split("## 20 fine-tuning steps")[1].split("##")[0]
    assert "| arm | push_button | turn_tap | all tasks |" in section_20
    cell_20 = cell_all = "0.50 ± 0.00 [0.50, 0.50] (n=2)"  # "all tasks": the task mean per seed, n = seeds
    assert f"| similar | {cell_20} | {cell_20} | {cell_all} |" in section_20
    assert "| similar | 1.00 ± 0.00 [1.00, 1.00] (n=2)" in md.split("## 40 fine-tuning steps")[1]
    assert "| shakespeare | 0.00 ± 0.00" in section_20
    section_40 = md.split("## 40 fine-tuning steps")[1]
    assert "| shakespeare | 0.20 ± 0.00 [0.20, 0.20] (n=2) | 0.20 ± 0.00 [0.20, 0.20] (n=2) | 0.20 ±" in section_40
    png = paths["png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_arms_plan_the_papers_comparison(tmp_path: Path) -> None:
    ablation = A.Ablation.load(
        write_ablation(tmp_path, styles=["similar"], arms=["lamp", "p2e", "lang_only", "clip", "scratch"])
    )
    assert [v.label for v in ablation.variants] == ["lamp", "p2e", "lang_only", "clip", "scratch"]
    jobs = {job.arm: job for job in A.plan(ablation, tmp_path / "grid") if job.seed == 0}
    pre = {arm: job.commands[0][1] for arm, job in jobs.items() if job.commands[0][1][0] == "pretrain"}
    assert set(pre) == {"lamp", "p2e", "lang_only", "clip"}  # scratch does not pretrain
    assert pre["lamp"][:3] == ["pretrain", "--configs", "smoke"] and "--prompts" in pre["lamp"]
    assert pre["p2e"][1:4] == ["--configs", "smoke", "p2e"] and "--prompts" not in pre["p2e"]
    assert pre["lang_only"][1:4] == ["--configs", "smoke", "lang_only"] and "--prompts" in pre["lang_only"]
    assert pre["clip"][1:4] == ["--configs", "smoke", "clip_reward"]
    scratch = jobs["scratch"].commands
    assert [run.name for run, _ in scratch] == ["push_button", "turn_tap"]
    args = scratch[0][1]
    assert args[0] == "finetune" and "--scratch" in args and "--from" not in args and "--freeze" not in args
    assert args[args.index("--scorer.kind") + 1] == "none"
    p2e_ft = jobs["p2e"].commands[1][1]
    assert p2e_ft[p2e_ft.index("--from") + 1] == str(tmp_path / "grid" / "p2e" / "seed0" / "pretrain")
    assert "critic_hidden" in p2e_ft
    finetune = {arm: job.commands[1][1] for arm, job in jobs.items() if arm != "scratch"}
    kinds = {arm: a[a.index("--scorer.kind") + 1] if "--scorer.kind" in a else None for arm, a in finetune.items()}
    assert kinds == {"lamp": None, "p2e": "none", "lang_only": None, "clip": "clip"}  # configs' smoke has kind tiny


def test_several_styles_give_one_lamp_row_each_and_p2e_needs_no_style(tmp_path: Path) -> None:
    ablation = A.Ablation.load(write_ablation(tmp_path, arms=["lamp", "scratch"]))
    assert [v.label for v in ablation.variants] == ["lamp-similar", "lamp-shakespeare", "scratch"]
    data = {"seeds": [0], "tasks": ["push_button"], "pretrain_steps": 10, "finetune_steps": 10, "arms": ["p2e"]}
    path = tmp_path / "p2e.yaml"
    path.write_text(json.dumps(data))
    assert [v.label for v in A.Ablation.load(path).variants] == ["p2e"]


def test_shipped_paper_file_plans_lamp_p2e_and_scratch_on_the_five_tasks() -> None:
    from lamp.prompts import prompts_dir

    ablation = A.Ablation.load(prompts_dir() / "paper.yaml")
    assert [v.label for v in ablation.variants] == ["lamp", "p2e", "scratch"]
    assert len(ablation.tasks) == 5 and ablation.freeze == ["critic_hidden"]
    ensemble = build_config(["pretrain", *ablation.configs], flags=ablation.flags).agent.expl
    assert (ensemble.members, ensemble.layers, ensemble.units, ensemble.act, ensemble.out_scale) == (
        10,
        4,
        512,
        "elu",
        0.1,
    )


def test_shipped_rlbench_paper_file_is_the_same_grid_on_rlbench_and_is_refused_without_it(tmp_path: Path) -> None:
    """prompts/paper_rlbench.yaml passes the validation `lamp ablate` runs before its first run, plans what
    paper.yaml plans, and (RLBench is not installed in this test environment) is one line and exit 2 here."""
    import importlib.util

    from typer.testing import CliRunner

    from lamp.cli import app
    from lamp.prompts import prompts_dir

    paper = A.Ablation.load(prompts_dir() / "paper.yaml")
    rlbench = A.Ablation.load(prompts_dir() / "paper_rlbench.yaml")
    for key in ("seeds", "tasks", "pretrain_steps", "finetune_steps", "eval_every", "budgets", "freeze", "flags"):
        assert getattr(rlbench, key) == getattr(paper, key), key
    assert [v.label for v in rlbench.variants] == [v.label for v in paper.variants]
    assert rlbench.configs == ["rlbench" if c == "metaworld" else c for c in paper.configs]
    cfg = build_config(["pretrain", *rlbench.configs], flags=rlbench.flags)
    assert cfg.env.backend == "rlbench" and cfg.env.wrist
    assert len(A.plan(rlbench, tmp_path / "grid")) == 9
    if importlib.util.find_spec("rlbench") is not None:
        pytest.skip("RLBench is installed here: the refusal cannot be seen")
    grid = tmp_path / "grid"
    args = ["ablate", str(prompts_dir() / "paper_rlbench.yaml"), "--logdir", str(grid)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "runs on RLBench (block `rlbench`), which is not installed here" in errors[0] and "docker build" in errors[0]
    assert not grid.exists()


def test_success_at_budget() -> None:
    curve = [(10, 0.1), (20, 0.4), (30, 0.2)]
    assert A.success_at(curve, 25) == 0.4 and A.success_at(curve, 30) == 0.2
    assert np.isnan(A.success_at(curve, 5))
    assert np.isnan(A.success_at(curve, 40))  # a run stopped at 30 has no number for 40, not its last one
    assert np.isnan(A.success_at([], 10))


def test_the_all_tasks_column_bootstraps_over_seeds_not_runs(tmp_path: Path) -> None:
    ablation = A.Ablation.load(write_ablation(tmp_path, seeds=[0, 1, 2], styles=["similar"]))
    grid = tmp_path / "grid"
    for seed, tasks in enumerate([(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]):
        for task, value in zip(("push_button", "turn_tap"), tasks, strict=True):
            fake_finetune_metrics(grid / "similar" / f"seed{seed}" / task, [value] * 4, 10)
    fake_finetune_metrics(grid / "similar" / "seed2" / "extra", [0.0], 10)  # not in the file: ignored
    md = A.summarize(ablation, grid)["md"].read_text()
    assert md.split("## 40 fine-tuning steps")[1].split("\n")[4].endswith("| 0.50 ± 0.00 [0.50, 0.50] (n=3) |")


def test_a_raised_budget_reruns_a_finished_run(tmp_path: Path) -> None:
    ablation = A.Ablation.load(write_ablation(tmp_path, seeds=[0], styles=["similar"]))
    run_dir, args = A.plan(ablation, tmp_path / "grid")[0].commands[1]  # fine-tuning, --run.steps 40
    run_dir.mkdir(parents=True)
    (run_dir / A.DONE_FILE).write_text(json.dumps({"env_steps": 30}))
    assert not A.finished(run_dir, args)
    (run_dir / A.DONE_FILE).write_text(json.dumps({"env_steps": 40}))
    assert A.finished(run_dir, args)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"styles": ["similar", "nosuchstyle"]}, "names style 'nosuchstyle', which does not exist"),
        ({"tasks": ["fly_to_moon"]}, "unknown tasks ['fly_to_moon']; valid: push_button"),
        ({"budgets": [50]}, "budgets [50] must lie in (0, finetune_steps=40]"),
        ({"seeds": []}, "'seeds' must be a non-empty list"),
        ({"configs": ["smoke", "nosuchblock"]}, "unknown config blocks ['nosuchblock']"),
        ({"colour": "red"}, "unknown keys ['colour']"),
        ({"seed": [0]}, "unknown keys ['seed']; did you mean 'seeds'?"),
        ({"freeze": ["actor"]}, "--freeze 'actor' is unknown; valid: critic_hidden"),
        ({"freeze": "critic_hidden"}, "'freeze' must be a list"),
        ({"arms": ["lamp", "dreamer"]}, "unknown arms ['dreamer']; valid: lamp, p2e, lang_only, clip, scratch"),
        ({"arms": ["p2e", "p2e"]}, "'arms' must be a non-empty list without repeats"),
        ({"budgets": 20}, "'budgets' must be a list"),
        ({"finetune_steps": 2.5}, "'finetune_steps' must be an integer ≥ 1, got 2.5"),
        ({"seeds": [-1]}, "'seeds' must be an integer ≥ 0, got -1"),
        ({"flags": ["--agent.deter"]}, "flag '--agent.deter' has no value"),
        ({"eval_every": 50}, "eval_every (50) must be at most finetune_steps (40)"),
        ({"eval_every": 20, "budgets": [30, 40]}, "budgets [30] are not evaluated"),
    ],
)
def test_bad_ablation_files(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(UsageError) as info:
        A.Ablation.load(write_ablation(tmp_path, **overrides))
    assert message in str(info.value)


def test_missing_ablation_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"does not exist; see prompts/ablation\.yaml"):
        A.Ablation.load(tmp_path / "nope.yaml")


def test_a_gpu_grid_is_refused_on_a_machine_without_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = write_ablation(tmp_path, configs=["smoke", "gpu"])
    with pytest.raises(UsageError) as info:
        A.check_local_devices(A.Ablation.load(path), path)  # loading alone is fine: a Ray cluster may have GPUs
    assert str(info.value).startswith(f"ablation file '{path}': device is 'cuda' but this machine has no such device")
    assert "drop `gpu` from its configs" in str(info.value)
    A.check_local_devices(A.Ablation.load(write_ablation(tmp_path)), path)  # cpu: fine


def test_each_run_is_headed_with_its_number_arm_seed_and_task(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    jobs = A.plan(A.Ablation.load(write_ablation(tmp_path)), tmp_path / "grid")
    assert [job.first for job in jobs] == [1, 4, 7, 10] and {job.total for job in jobs} == {12}
    A.run_job(jobs[1], runner=lambda args: 0)
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0]
        == f"[4/12] similar seed 1 pretrain: lamp pretrain -> {tmp_path / 'grid' / 'similar' / 'seed1' / 'pretrain'}"
    )
    assert lines[2].startswith("[6/12] similar seed 1 turn_tap: lamp finetune -> ")


def test_dry_run_lists_every_run_and_a_shipped_grid_is_found_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from lamp.cli import app

    monkeypatch.chdir(tmp_path)  # not the checkout: 'paper' is the shipped prompts/paper.yaml
    result = CliRunner().invoke(app, ["ablate", "paper", "--logdir", "grid", "--dry-run"], env={"COLUMNS": "2000"})
    assert result.exit_code == 0, result.output
    runs = [line for line in result.output.splitlines() if line.startswith("[")]
    assert len(runs) == 18 + 18 + 15  # lamp and p2e: 3 seeds x (pretrain + 5 tasks); scratch: 3 x 5
    assert runs[0].startswith("[1/51] lamp seed 0 pretrain: lamp pretrain --configs metaworld small expl_original gpu")
    assert (
        runs[-1].startswith("[51/51] scratch seed 2 take_lid_off_saucepan: lamp finetune ") and "--scratch" in runs[-1]
    )
    assert result.output.splitlines()[-1].endswith("paper.yaml: valid; 51 runs, nothing started")
    assert not (tmp_path / "grid").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [0]\n")
    result = CliRunner().invoke(app, ["ablate", str(bad), "--logdir", "grid", "--dry-run"], env={"COLUMNS": "400"})
    assert result.exit_code == 2 and "did you mean 'seeds'?" in result.output and not (tmp_path / "grid").exists()


def test_one_seed_shows_its_value_with_n_1_not_a_zero_width_interval(tmp_path: Path) -> None:
    ablation = A.Ablation.load(write_ablation(tmp_path, seeds=[0], styles=["similar"], tasks=["push_button"]))
    grid = tmp_path / "grid"
    fake_finetune_metrics(grid / "similar" / "seed0" / "push_button", [0.3] * 4, 10)
    md = A.summarize(ablation, grid)["md"].read_text()
    assert "| similar | 0.30 (n=1) |" in md and "±" not in md.split("## ")[-1]
