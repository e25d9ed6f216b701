"""The agent benchmarks still run end to end at tiny size and print the JSON their docs promise (no timings)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def run_json(*args: str) -> dict:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_learning_check_prints_curve_and_random_baseline():
    out = run_json(
        "benchmarks/learning_check.py",
        *("--size", "tiny", "--env-steps", "160", "--prefill", "100", "--block", "1", "--obs", "state"),
        *("--fast", "0", "--threads", "1", "--precision", "float32", "--train-ratio", "32"),
        *("--set", "actor_grad=reinforce", "model_lr=3e-4"),
    )
    assert out["overrides"] == {"actor_grad": "reinforce", "model_lr": 3e-4}
    assert out["random_policy_success_rate"] is not None and out["updates"] > 0
    row = out["curve"][-1]
    assert 0 <= row["success_rate"] <= 1 and 0 <= row["final_success_rate"] <= 1
    assert {"model/reward", "behavior/return", "behavior/entropy"} <= set(row)


def test_agent_throughput_reports_mfu_for_each_actor_gradient():
    for actor_grad in ("dynamics", "reinforce"):
        out = run_json(
            "benchmarks/agent_throughput.py",
            *("--one", "--size", "tiny", "--precision", "float32", "--fast", "0", "--explorer", "1"),
            *("--steps", "1", "--threads", "1", "--actor-grad", actor_grad),
        )
        assert out["actor_grad"] == actor_grad and out["precision_used"] == "float32"
        assert out["sec_per_step"] > 0 and 0 < out["mfu"] < 1 and out["gflop_per_step"] > 0


def test_transfer_check_runs_both_arms_and_measures_the_random_policy(tmp_path):
    # two rounds of 30 fine-tuning steps (the runs resume), unless scratch passes 50% after the first
    out = run_json("benchmarks/transfer_check.py", "--smoke", "--round-steps", "30", "--logdir", str(tmp_path / "tc"))
    assert out["arms"] == ["p2e", "scratch"] and out["ablate_exit_code"] == 0 and out["task"] == "close_microwave"
    assert 0 <= out["random_policy"]["success_rate"] <= 1 and out["random_policy"]["episodes"] == 2
    assert out["scripted_expert"]["episodes"] == 2  # the ceiling, on the same (here 30-step) episodes
    assert set(out["final_success"]) == {"p2e/seed0", "scratch/seed0"}
    assert all(v is not None and 0 <= v <= 1 for v in out["final_success"].values())
    assert (tmp_path / "tc" / "transfer_check.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "tc" / "transfer_check.json").read_text())
    steps = [point["step"] for point in saved["arms"]["scratch"]["evaluations"]]
    assert steps in ([0, 30], [0, 30, 60]) and out["finetune_steps"] == steps[-1]
    first = saved["arms"]["scratch"]["evaluations"][0]
    assert first["success_seeds"] == 1 and first["success"][1] <= first["success"][0] <= first["success"][2]
    assert saved["arms"]["p2e"]["success_area"]["until"] == steps[-1] and "p2e" in saved["head_start"]
    assert len(saved["head_start"]["p2e"]["steps_sooner_to_target"]) == 3
    (tmp_path / "tc" / "summary.md").unlink()
    report = run_json("benchmarks/transfer_check.py", "--report", "--logdir", str(tmp_path / "tc"))
    assert report["final_success"] == out["final_success"] and report["random_policy"] == out["random_policy"]
    assert (tmp_path / "tc" / "summary.md").is_file()  # rewritten from the runs, nothing trained
    missing = subprocess.run(
        [sys.executable, "benchmarks/transfer_check.py", "--report", "--logdir", str(tmp_path / "none")],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 2 and "run it first" in missing.stderr and "Traceback" not in missing.stderr


def test_transfer_check_refuses_a_bad_grid_file_before_writing(tmp_path):
    for text, message in (("arms: [p2e, dreamer]\n", "unknown arms ['dreamer']"), ("[1, 2\n", "transfer check file")):
        grid = tmp_path / "grid.yaml"
        grid.write_text(text)
        proc = subprocess.run(
            [sys.executable, "benchmarks/transfer_check.py", "--file", str(grid), "--logdir", str(tmp_path / "tc")],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.startswith("error: ") and message in proc.stderr and str(grid) in proc.stderr
        assert not (tmp_path / "tc").exists()  # nothing half-written


def test_agent_throughput_profile_splits_the_step_into_phases():
    out = run_json(
        "benchmarks/agent_throughput.py",
        *("--one", "--size", "tiny", "--precision", "auto", "--fast", "0", "--explorer", "1"),
        *("--steps", "1", "--threads", "1", "--profile"),
    )
    assert out["precision_used"] in ("float32", "bfloat16") and "GFLOP/s" in out["precision_reason"]
    shares = out["phase_share"]
    assert {"observe loop (64 posterior steps)", "imagination (15 steps from 1024 starts)"} <= set(shares)
    assert all(0 <= v <= 1 for v in shares.values()) and 0.9 <= sum(shares.values()) <= 1.01
    assert shares["backward (all losses, one pass)"] > 0 and out["top_ops_self_share"]


def test_learning_check_on_a_task_runs_lamp_finetune_from_pixels_and_reads_its_evaluations(tmp_path):
    run = tmp_path / "lc"
    args = ["--env", "push_button", "--obs", "image", "--size", "smoke", "--fast", "0", "--precision", "float32"]
    args += ["--env-steps", "60", "--prefill", "30", "--eval-every", "30", "--eval-episodes", "1"]
    args += ["--episode-length", "30", "--random-episodes", "2", "--logdir", str(run)]
    args += ["--configs", "dreamerv3_critic", "--set", "env.action_repeat=2", "discount=0.95"]  # an arm's recipe
    out = run_json("benchmarks/learning_check.py", *args)
    assert out["exit_code"] == 0 and out["random_policy"]["episodes"] == 2
    assert 0 <= out["random_policy"]["success_rate"] <= 1 and 0 <= out["last_eval_success"] <= 1
    assert out["frames"] == 120 and out["action_repeat"] == 2 and out["discount"] == 0.95
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["agent"]["vector_keys"] == [] and saved["scorer"]["kind"] == "none"  # cameras only
    assert saved["env"]["action_repeat"] == 2 and saved["agent"]["discount"] == 0.95  # the arm, from the config
    assert saved["agent"]["repval"] == 0.3 and saved["agent"]["twohot"] == "symexp"
    refs = json.loads((run / "reference_policies.json").read_text())
    assert refs["key"]["repeat"] == 2 and refs["key"]["length"] == 30  # the references play the arm's episodes
    assert (run / "done.json").is_file() and (run / "learning_check.png").read_bytes()[:4] == b"\x89PNG"
    other_arm = subprocess.run(
        [sys.executable, "benchmarks/learning_check.py", *args[: args.index("--configs")]],  # no blocks, no --set
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert other_arm.returncode == 2 and "holds the arm ['metaworld', 'smoke', 'dreamerv3_critic']" in other_arm.stderr
    assert "use another --logdir" in other_arm.stderr and "Traceback" not in other_arm.stderr
    report = run_json("benchmarks/learning_check.py", *args, "--report")  # no training, the same numbers
    assert report["last_eval_success"] == out["last_eval_success"] and report["random_policy"] == out["random_policy"]
    diag = run_json("benchmarks/diagnose.py", str(run), "--episodes", "1", "--contexts", "5")
    assert diag["episodes"] == 1 and diag["checkpoint"].endswith(".pt") and diag["last_logged"]["step"] == 60
    assert len(diag["open_loop_reward_mae_by_step"]) == 4 == len(diag["open_loop_image_mse_by_step"])  # smoke horizon
    assert -1 <= diag["reward_head_corr"] <= 1 and diag["reward_head_mae"] >= 0 and 0.1 <= diag["actor_std"] <= 1
    bad = subprocess.run(
        [sys.executable, "benchmarks/diagnose.py", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "is not a lamp run" in bad.stderr and "Traceback" not in bad.stderr
    none = subprocess.run(
        [sys.executable, "benchmarks/diagnose.py", str(run), "--episodes", "0"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert none.returncode == 2 and "--episodes must be at least 1" in none.stderr and "Traceback" not in none.stderr
    rows = out_rows(run)
    assert rows[-1]["updates"] > 0 and rows[-1]["frames"] == 2 * rows[-1]["env_steps"] == 120
    assert rows[-1]["hours"] > 0 and 0 <= rows[-1]["eval/success_sample"] <= 1  # wall time, the sampled policy
    table = subprocess.run(
        [sys.executable, "benchmarks/ab_table.py", f"a={run}", f"b={run}", "--out", str(tmp_path / "ab"), "--name=g"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "| a | equal updates |" in table.stdout and "| b | equal hours |" in table.stdout
    raw = [json.loads(line) for line in (tmp_path / "ab" / "g.jsonl").read_text().splitlines()]
    low, high = refs["random_policy"]["return"], refs["scripted_expert"]["return"]
    row = next(r for r in raw if r.get("env_steps") == 60)
    assert row["eval/norm_return"] == pytest.approx((row["eval/return"] - low) / (high - low), abs=1e-4)
    assert (tmp_path / "ab" / "g.png").read_bytes()[:4] == b"\x89PNG"
    bad = subprocess.run(
        [sys.executable, "benchmarks/ab_table.py", f"a={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "is not a learning-check run dir" in bad.stderr and "Traceback" not in bad.stderr


def out_rows(run: Path) -> list[dict]:
    """learning_check's per-evaluation rows, read back from the run as the script reads them."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from learning_check import task_curve

    return task_curve(run / "metrics.jsonl")


@pytest.mark.parametrize(
    ("args", "starts", "also"),
    [
        (["--env", "push_buton"], "error: unknown env 'push_buton'", "metaworld/push_button"),
        (["--set", "actor_grad"], "error: --set 'actor_grad' has no '='", "KEY=VALUE"),
        (["--set", "env.action_repeat=2"], "error: --set env.action_repeat=2 is for task runs", "agent keys only"),
    ],
)
def test_learning_check_names_a_bad_argument_in_one_line(args, starts, also):
    proc = subprocess.run(
        [sys.executable, "benchmarks/learning_check.py", *args, "--env-steps", "10"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(starts) and also in proc.stderr
