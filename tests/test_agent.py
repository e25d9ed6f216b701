"""The full agent at tiny size: train step, explorer switch, NaN guard, acting, checkpoints and exact resume."""

import numpy as np
import pytest
import torch

from lamp.agent.agent import Agent, TrainingStopped
from lamp.agent.config import make_config
from lamp.agent.replay import Replay
from lamp.errors import UsageError

SPACE = {"image": (16, 16, 3), "state": (3,), "lang": (768,)}


def episode(length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(0, 256, (length, 16, 16, 3), dtype=np.uint8),
        "state": rng.normal(size=(length, 3)).astype(np.float32),
        "lang": np.repeat(rng.normal(size=(1, 768)).astype(np.float32), length, 0),
        "action": rng.uniform(-1, 1, (length, 4)).astype(np.float32),
        "reward": rng.normal(size=length).astype(np.float32),
        "is_first": np.arange(length) == 0,
        "is_last": np.arange(length) == length - 1,
        "is_terminal": np.arange(length) == length - 1,
    }


def make_replay(directory=None, seed=0) -> Replay:
    cfg = {"capacity": 1000, "chunk": 16, "directory": str(directory) if directory else ""}
    replay = Replay(cfg, SPACE, action_dim=4, seed=seed)
    if len(replay) == 0:
        for i in range(4):
            replay.add_episode(episode(12, i))
    return replay


def params(agent: Agent) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in agent.state_dict().items()}


def test_train_step_updates_all_parts_and_policy_acts():
    torch.manual_seed(0)
    agent = Agent(make_config("tiny", expl={"intr_scale": 0.9, "extr_scale": 0.1}, lang_to_actor=True), SPACE)
    replay = make_replay()
    before = params(agent)
    metrics = agent.train_step(replay.sample(3, 8))
    ratio = "behavior/intr_extr_ratio"  # inf while the zero-initialised reward head has no spread yet
    assert all(torch.isfinite(v).all() for k, v in metrics.items() if k != ratio)
    assert {"loss/model", "loss/explorer", "loss/actor", "loss/critic", "behavior/disagreement"} <= set(metrics)
    after = agent.state_dict()
    for prefix in ("world_model.", "explorer.", "behavior.critic."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix
    obs = {k: v[:2] for k, v in episode(2, 9).items()}
    action, state = agent.policy(obs)
    assert action.shape == (2, 4) and np.abs(action).max() <= 1
    action, state = agent.policy({**obs, "is_first": np.zeros(2, bool)}, state, mode="eval")
    assert action.shape == (2, 4)


def test_intr_scale_zero_skips_the_ensemble():
    agent = Agent(make_config("tiny", expl={"intr_scale": 0.0}), SPACE)
    assert agent.explorer is None and "explorer" not in agent.optimizers
    metrics = agent.train_step(make_replay().sample(3, 8))
    assert "loss/explorer" not in metrics and "behavior/disagreement" not in metrics
    n_params = sum(p.numel() for p in agent.parameters())
    assert agent.model_bytes() >= 3 * 4 * n_params


@pytest.mark.parametrize("twohot", ["symlog", "symexp"])
def test_replay_value_loss_adds_to_the_critic_loss_only(twohot):
    data = make_replay().sample(3, 8)
    losses = {}
    for repval in (0.0, 0.3):
        torch.manual_seed(0)
        agent = Agent(make_config("tiny", repval=repval, twohot=twohot, lang_to_actor=True), SPACE)
        torch.manual_seed(1)
        agent._pending = []
        losses[repval], metrics = agent.compute_losses(agent.to_tensors(data))
        assert ("behavior/replay_return" in metrics) == (repval > 0)
    for key in ("model", "actor"):
        torch.testing.assert_close(losses[0.3][key], losses[0.0][key])
    assert losses[0.3]["critic"] > losses[0.0]["critic"]  # a cross-entropy term more
    assert agent.behavior.twohot.space == agent.world_model.twohot.space == twohot
    with pytest.raises(ValueError, match=r"expl\.intr_scale > 0 blends in"):  # two rewards, one critic
        Agent(make_config("tiny", repval=0.3, expl={"intr_scale": 0.9, "extr_scale": 0.1}), SPACE)


def test_nan_loss_is_skipped_then_stops_with_the_loss_name():
    agent = Agent(make_config("tiny"), SPACE)
    data = make_replay().sample(3, 8)
    data["reward"][:] = np.nan
    before = params(agent)
    assert "skipped" in agent.train_step(data)
    assert agent.counters["skipped"] == 1 and agent.counters["updates"] == 0
    assert all(torch.equal(before[k], v) for k, v in agent.state_dict().items())
    agent.train_step(data)
    with pytest.raises(TrainingStopped, match="model/reward"):
        agent.train_step(data)


def test_checkpoint_from_another_config_names_the_keys(tmp_path):
    agent = Agent(make_config("tiny"), SPACE)
    agent.save(tmp_path / "ckpt.pt")
    other = Agent(make_config("tiny", deter=48), SPACE)
    with pytest.raises(UsageError, match=r"agent\.deter: 32 != 48") as err:
        other.load(tmp_path / "ckpt.pt")
    assert "\n" not in str(err.value) and "tensors differ" in str(err.value)
    with pytest.raises(UsageError, match="explorer"):
        Agent(make_config("tiny", expl={"intr_scale": 0.5}), SPACE).load(tmp_path / "ckpt.pt")


@pytest.mark.slow
def test_exact_resume_matches_uninterrupted_run(tmp_path):
    cfg = make_config("tiny", expl={"intr_scale": 0.9, "extr_scale": 0.1})
    n, m = 2, 2

    def train(agent, replay, steps):
        for _ in range(steps):
            agent.train_step(replay.sample(cfg.batch_size, cfg.batch_length))

    torch.manual_seed(0)
    straight = Agent(cfg, SPACE)
    train(straight, make_replay(tmp_path / "a"), n + m)

    torch.manual_seed(0)
    first = Agent(cfg, SPACE)
    replay = make_replay(tmp_path / "b")
    train(first, replay, n)
    replay.flush()
    first.save(tmp_path / "ckpt.pt", extra={"replay": replay.state_dict()})

    torch.manual_seed(1234)  # a fresh process would start from other RNG states
    np.random.seed(1234)
    resumed = Agent(cfg, SPACE)
    replay = make_replay(tmp_path / "b", seed=77)
    extra = resumed.load(tmp_path / "ckpt.pt")
    replay.load_state_dict(extra["replay"])
    train(resumed, replay, m)

    assert resumed.counters["updates"] == n + m
    want = straight.state_dict()
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, want[key]), key
    for name, opt in resumed.optimizers.items():
        for a, b in zip(opt.state.values(), straight.optimizers[name].state.values(), strict=True):
            assert torch.equal(a["exp_avg"], b["exp_avg"])


def test_channels_last_and_bf16_give_finite_losses_and_same_keys():
    torch.manual_seed(0)
    plain = Agent(make_config("tiny"), SPACE)
    fast = Agent(make_config("tiny", channels_last=True, precision="bfloat16"), SPACE)
    assert plain.state_dict().keys() == fast.state_dict().keys()  # checkpoints move between the two
    metrics = fast.train_step(make_replay().sample(3, 8))
    assert all(torch.isfinite(v).all() for v in metrics.values())


@pytest.mark.parametrize("actor_grad", ["dynamics", "reinforce"])
@pytest.mark.parametrize("intr_scale", [0.0, 0.9])
def test_actor_loss_trains_only_the_actor(actor_grad, intr_scale):
    """The actor's loss reaches the actor (also without entropy bonus) and leaves no gradient anywhere else."""
    torch.manual_seed(0)
    cfg = make_config("tiny", actor_grad=actor_grad, actent=0.0, expl={"intr_scale": intr_scale})
    agent = Agent(cfg, SPACE)
    replay = make_replay()
    agent.train_step(replay.sample(3, 8))  # reward head and critic start at exactly zero: nothing to follow yet
    agent._pending = []
    losses, _ = agent.compute_losses(agent.to_tensors(replay.sample(3, 8)))
    for opt in agent.optimizers.values():
        opt.zero_grad(set_to_none=True)
    losses["actor"].backward()
    for name, param in agent.named_parameters():
        if name.startswith(("behavior.actor.", "behavior.slow_critic.")):  # the slow critic is an EMA, never trained
            continue
        assert param.grad is None or not param.grad.any(), name
        assert param.requires_grad, f"{name} left frozen"
    grads = [p.grad for p in agent.behavior.actor.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_dynamics_gradient_moves_the_action_towards_more_reward(monkeypatch):
    """With a reward that pays for one deterministic-state unit, dynamics updates raise the imagined reward."""
    torch.manual_seed(0)
    agent = Agent(make_config("tiny", actent=0.0, actor_lr=1e-2, horizon=3), SPACE)
    data = agent.to_tensors(make_replay().sample(3, 8))
    monkeypatch.setattr(agent.world_model, "reward", lambda feat: 10 * feat[..., -1])

    def imagined_reward() -> torch.Tensor:
        agent._pending = []
        losses, metrics = agent.compute_losses(data)
        return losses["actor"], metrics["behavior/imag_reward"]

    before = imagined_reward()[1]
    for _ in range(20):
        agent.optimizers["actor"].zero_grad()
        imagined_reward()[0].backward()
        agent.optimizers["actor"].step()
    assert imagined_reward()[1] > before + 0.05


def test_twohot_is_checked_like_the_architecture_and_old_checkpoints_load_as_symlog(tmp_path):
    from lamp.config import build_config
    from lamp.source import check_architecture

    assert make_config("tiny").twohot == "symexp"  # the default: the current DreamerV3's bins in raw space
    Agent(make_config("tiny", twohot="symlog"), SPACE).save(tmp_path / "new.pt")
    ckpt = torch.load(tmp_path / "new.pt", weights_only=True)
    assert ckpt["agent"]["config"]["twohot"] == "symlog"
    del ckpt["agent"]["config"]["twohot"]  # saved before agent.twohot existed: bins in symlog space, the only way then
    torch.save(ckpt, tmp_path / "old.pt")
    Agent(make_config("tiny", twohot="symlog"), SPACE).load(tmp_path / "old.pt")
    check_architecture(tmp_path / "old.pt", build_config(["tiny"], flags=["--agent.twohot", "symlog"]), "fix")
    with pytest.raises(UsageError, match=r"agent\.twohot: 'symlog' != 'symexp'"):
        Agent(make_config("tiny"), SPACE).load(tmp_path / "old.pt")  # today's default cannot load an old checkpoint
    for path in (tmp_path / "old.pt", tmp_path / "new.pt"):
        with pytest.raises(UsageError, match=r"another architecture \(agent\.twohot: checkpoint 'symlog' vs config"):
            check_architecture(path, build_config(["tiny"]), "fix")
