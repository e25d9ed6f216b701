"""The fast path computes the same thing as the reference path: compiled vs eager losses and gradients on a fixed
batch, the one-pass critic vs two critic evaluations, and the machine- and run-dependent choices (precision, threads,
compiled or eager)."""

import os
import shutil
import subprocess
import sys

import pytest
import torch
from test_agent import SPACE, make_replay
from torch import nn

from lamp.agent import speed
from lamp.agent.agent import Agent
from lamp.agent.config import make_config
from lamp.agent.nets import MLP, split_grad

# fp32 reference vs the compiled step functions: the same operations fused into other kernels, so sums run in
# another order; over a 4-step imagination and its backward that stays well inside these bounds
LOSS_TOL = {"rtol": 1e-4, "atol": 1e-5}
GRAD_TOL = {"rtol": 1e-3, "atol": 1e-5}


def losses_and_grads(agent: Agent, data: dict, seed: int) -> tuple[dict, dict]:
    torch.manual_seed(seed)  # the same noise for both paths: it is drawn outside the compiled functions
    agent._pending = []
    losses, _ = agent.compute_losses(data)
    agent.zero_grad(set_to_none=True)
    sum(losses.values()).backward()
    grads = {name: p.grad.clone() for name, p in agent.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


def reference_and_fast(**overrides) -> tuple[Agent, Agent]:
    cfg = make_config("tiny", **overrides)
    torch.manual_seed(0)
    ref = Agent(cfg, SPACE)
    with torch.no_grad():  # reward head and critic start at zero; make them non-trivial so every path carries signal
        for head in (ref.world_model.reward_head, ref.behavior.critic):
            head.out.weight.normal_(0, 0.3)
    fast = Agent({**cfg, "compile": True, "channels_last": True}, SPACE)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


@pytest.mark.slow
@pytest.mark.parametrize(
    "actor_grad, critic",
    [
        ("dynamics", {"expl": {"intr_scale": 0.9, "extr_scale": 0.1}}),  # with Plan2Explore
        ("reinforce", {"repval": 0.3, "twohot": "symexp"}),  # the current DreamerV3 critic (no explorer)
    ],
)
def test_compiled_path_matches_eager_losses_and_gradients(actor_grad, critic):
    ref, fast = reference_and_fast(
        **critic,
        actor_grad=actor_grad,
        lang_to_actor=True,
        free_nats=0.0,  # KL gradients reach prior and posterior from the first step
    )
    assert fast.steps and fast.world_model.rssm.steps and not ref.steps
    data = ref.to_tensors(make_replay().sample(3, 8))
    want_losses, want_grads = losses_and_grads(ref, data, seed=1)
    frames = torch._dynamo.utils.counters["frames"]["ok"]
    got_losses, got_grads = losses_and_grads(fast, data, seed=1)
    if actor_grad == "dynamics":  # the first run compiles (the reinforce case may reuse parts of those graphs)
        assert torch._dynamo.utils.counters["frames"]["ok"] > frames, "nothing was compiled"
    parts = {"model", "actor", "critic"} | ({"explorer"} if "expl" in critic else set())
    assert want_losses.keys() == got_losses.keys() == parts
    for key, value in want_losses.items():
        torch.testing.assert_close(got_losses[key], value, **LOSS_TOL, msg=lambda m, k=key: f"loss {k}: {m}")
    assert want_grads.keys() == got_grads.keys()
    assert any(k.startswith("behavior.actor.") for k in want_grads)
    for key, value in want_grads.items():
        assert value.abs().sum() > 0, f"{key} has no gradient: the comparison would be empty"
        torch.testing.assert_close(got_grads[key], value, **GRAD_TOL, msg=lambda m, k=key: f"grad {k}: {m}")


def test_split_grad_matches_two_critic_evaluations():
    """One forward, two gradient routes == critic(x.detach()) for the critic loss + a frozen critic(x) for the actor."""
    torch.manual_seed(0)
    critic = MLP(12, 16, 2, out=5)
    x = torch.randn(6, 4, 12, requires_grad=True)
    w_critic, w_actor = torch.randn(6, 4, 5), torch.randn(6, 4, 5)

    def grads_of(loss: torch.Tensor) -> list[torch.Tensor]:
        critic.zero_grad(set_to_none=True)
        x.grad = None
        loss.backward()
        return [x.grad.clone()] + [p.grad.clone() for p in critic.parameters()]

    for_params, for_input = split_grad(critic, x)
    torch.testing.assert_close(for_params, for_input)
    got = grads_of((w_critic * for_params).sum() + (w_actor * for_input).sum())
    critic_out = critic(x.detach())
    for p in critic.parameters():
        p.requires_grad_(False)
    actor_out = critic(x)
    for p in critic.parameters():
        p.requires_grad_(True)
    want = grads_of((w_critic * critic_out).sum() + (w_actor * actor_out).sum())
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)
    assert got[0].abs().sum() > 0 and got[1].abs().sum() > 0


def test_split_grad_respects_frozen_parameters_and_no_grad():
    critic = MLP(3, 4, 1, out=2)
    critic.hidden[0].weight.requires_grad_(False)  # e.g. LAMP's linear probe freezes hidden critic layers
    x = torch.randn(5, 3, requires_grad=True)
    a, b = split_grad(critic, x)
    (a.sum() + b.sum()).backward()
    assert critic.hidden[0].weight.grad is None and critic.out.weight.grad is not None and x.grad is not None
    with torch.no_grad():
        a, b = split_grad(critic, x)
    assert a is b and not a.requires_grad
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)  # its module hooks run inside our inner backward (benchmarks use it)
    with counter:
        a, b = split_grad(critic, x)
        (a.sum() + b.sum()).backward()
    assert counter.get_total_flops() > 0


def test_auto_precision_picks_the_faster_and_says_why(monkeypatch):
    speed._auto.cache_clear()
    monkeypatch.setattr(speed, "measure_precisions", lambda device: (100.0, 31.0))
    choice = speed.choose_precision("auto", "cpu")
    assert choice.name == "float32" and choice.dtype is None
    assert "fp32 100 vs bf16 31 GFLOP/s" in choice.reason
    speed._auto.cache_clear()
    monkeypatch.setattr(speed, "measure_precisions", lambda device: (100.0, 230.0))
    choice = speed.choose_precision("auto", "cpu")
    assert choice.name == "bfloat16" and choice.dtype is torch.bfloat16
    agent = Agent(make_config("tiny", precision="auto"), SPACE)
    assert agent.precision.name == "bfloat16" and agent.autocast_dtype is torch.bfloat16
    speed._auto.cache_clear()
    monkeypatch.setattr(speed, "measure_precisions", lambda device: (100.0, 110.0))  # not worth the accuracy
    assert speed.choose_precision("auto", "cpu").name == "float32"
    speed._auto.cache_clear()
    assert speed.choose_precision("bf16").name == "bfloat16" and speed.choose_precision("float32").dtype is None
    with pytest.raises(ValueError, match=r"agent\.precision"):
        speed.choose_precision("fp8")


def test_precision_measurement_runs_briefly_on_this_machine():
    fp32, bf16 = speed.measure_precisions(torch.device("cpu"), seconds=0.05)
    assert fp32 > 0 and bf16 > 0


def test_learner_threads_follow_affinity_and_cgroup_quota(monkeypatch, tmp_path):
    monkeypatch.setattr(speed.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    assert speed.available_cores(tmp_path) == 6  # no cpu.max: affinity alone
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert speed.available_cores(tmp_path) == 6
    (tmp_path / "cpu.max").write_text("250000 100000\n")
    assert speed.available_cores(tmp_path) == 2  # a 2.5-CPU quota runs 2 threads without being throttled
    monkeypatch.setattr(speed, "available_cores", lambda: 3)
    assert speed.learner_threads(0) == 3 and speed.learner_threads(5) == 5


def test_compile_keeps_checkpoint_keys_and_prefetch_is_a_no_op_on_cpu():
    plain = Agent(make_config("tiny"), SPACE)
    fast = Agent(make_config("tiny", compile=True), SPACE)  # compiling is lazy: nothing is traced until a step runs
    assert plain.state_dict().keys() == fast.state_dict().keys()
    assert isinstance(fast.behavior.critic, nn.Module) and fast.steps and fast.compile_mode == "default"
    assert plain.compile_mode is None and not plain.steps
    batch = make_replay().sample(3, 8)
    assert plain.prefetch(batch) is batch  # no copy to hide on CPU; train_step takes the batch as it is


def test_doctor_prints_the_precision_comparison(monkeypatch):
    from lamp import doctor

    speed._auto.cache_clear()
    monkeypatch.setattr(speed, "measure_precisions", lambda device: (120.0, 30.0))
    monkeypatch.setattr(doctor.importlib.import_module("torch").cuda, "is_available", lambda: False)
    check = doctor.check_precision()
    speed._auto.cache_clear()
    assert check.status == "OK" and check.name == "agent precision"
    assert check.detail.startswith("auto picks float32: fp32 120 vs bf16 30 GFLOP/s on ")
    for name in dir(doctor):  # every other probe stubbed: the precision line is part of the doctor's output
        if name.startswith("check_") and name != "check_precision":
            stub = [] if name == "check_rlbench" else doctor.Check(name, "OK", "")
            monkeypatch.setattr(doctor, name, lambda *a, stub=stub, **k: stub)
    monkeypatch.setattr(doctor, "check_precision", lambda: check)
    assert "agent precision" in [c.name for c in doctor.run_checks("metaworld")]


def test_compile_auto_rule_short_runs_stay_eager_long_runs_compile():
    assert speed.updates_to_go(20_000, 0, 1000, 64, 16, 32) == 2375  # 19k collected steps, one update per 8
    assert speed.updates_to_go(20_000, 19_000, 1000, 64, 16, 32) == 125  # a resume close to the end
    assert speed.updates_to_go(500, 0, 1000, 64, 16, 32) == 0  # all prefill
    long, short = speed.choose_compile("auto", 2375, 1000), speed.choose_compile("auto", 125, 1000)
    assert long.on and "auto: 2,375 updates to go >= run.compile_min_updates 1,000" in long.reason
    assert not short.on and "125 updates to go < run.compile_min_updates 1,000" in short.reason
    assert speed.choose_compile(True, 0, 2000).on and not speed.choose_compile(False, 10**9, 2000).on
    assert speed.choose_compile(False, 10**9, 2000).reason == "agent.compile: false (set)"
    with pytest.raises(ValueError, match="auto, true, false"):
        speed.choose_compile("yes", 1, 1)


def test_an_agent_built_directly_with_compile_auto_stays_eager():
    agent = Agent(make_config("tiny", compile="auto"), SPACE)
    assert not agent.steps and agent.compile_mode is None and not agent.world_model.rssm.steps


def test_the_training_job_decides_compile_by_the_run_length_and_uses_the_persistent_cache(tmp_path, monkeypatch):
    from lamp.config import build_config
    from lamp.train import decide_compile

    monkeypatch.setenv("LAMP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)  # restored (unset) after the test
    lines: list[str] = []
    run = build_config(["metaworld", "size2m"], flags=["--run.steps", "20000"])
    assert run.agent.compile == "auto"  # the default
    assert decide_compile(run, 0, lines.append) is True
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cache" / "inductor")
    assert lines[-1].startswith("agent step: compiled (auto: 2,375 updates to go >= run.compile_min_updates 1,000")
    assert lines[-1].endswith(f"; cache {tmp_path / 'cache' / 'inductor'})")
    assert decide_compile(run, 19_000, lines.append) is False  # resumed near its end: eager
    assert lines[-1].startswith("agent step: eager (auto: 125 updates to go <")
    assert decide_compile(build_config(["smoke"]), 0, lines.append) is False  # the smoke block says so
    assert lines[-1] == "agent step: eager (agent.compile: false (set))"
    fast = build_config(["smoke", "fast"])
    assert decide_compile(fast, 0, lines.append) is True and "agent.compile: true (set)" in lines[-1]


def test_an_unwritable_compile_cache_is_a_warning_and_a_fresh_folder(tmp_path, monkeypatch):
    blocked = tmp_path / "a_file" / "inductor"  # below a plain file: cannot be made, even by root
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(blocked))
    lines: list[str] = []
    folder = speed.use_compile_cache(lines.append)
    try:
        assert folder != blocked and folder.is_dir() and os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(folder)
        assert len(lines) == 1 and lines[0].startswith(f"warning: compile cache {blocked} is not writable (")
        assert lines[0].endswith(f"compiling into {folder}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


BROKEN_CACHE = """
import torch
from lamp.agent.speed import use_compile_cache
use_compile_cache()
f = torch.compile(lambda x: torch.sin(x) * 2 + x.square())
print("VALUE", round(float(f(torch.linspace(0, 1, 8)).sum()), 5))
"""


@pytest.mark.slow
def test_a_broken_compile_cache_is_a_one_line_warning_and_a_recompile(tmp_path):
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}

    def run() -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-c", BROKEN_CACHE]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)

    first = run()
    assert first.returncode == 0, first.stderr[-2000:]
    entries = [p for p in (tmp_path / "inductor").rglob("*") if p.is_file() and "locks" not in p.parts]
    assert entries  # the compiled graph was cached where we said
    for path in entries:
        path.write_bytes(b"\x0cnot a cache entry")  # every entry unreadable: a disk error, another torch's files
    second = run()
    assert second.returncode == 0, second.stderr[-2000:]
    assert [x for x in second.stdout.split() if x != "VALUE"] == [x for x in first.stdout.split() if x != "VALUE"]
    assert "recompiling it" in second.stderr and "Traceback" not in second.stderr, second.stderr[-2000:]
