"""Where the agent follows LAMP / DreamerV3 (issue 11): reward blend, bounded imagined actions, shifts, Adam eps."""

import pytest
import torch
from test_agent import SPACE, make_replay

from lamp.agent.agent import Agent
from lamp.agent.config import make_config
from lamp.agent.nets import MLP, ConvEncoder, clip_action
from lamp.config import build_config

PRETRAIN = {"intr_scale": 0.9, "extr_scale": 0.1}


def agent_with(**expl) -> Agent:
    torch.manual_seed(0)
    return Agent(make_config("tiny", expl={**PRETRAIN, **expl}), SPACE)


def imagined(agent: Agent) -> tuple[torch.Tensor, torch.Tensor]:
    feat = torch.randn(64, agent.cfg.horizon + 1, agent.world_model.rssm.feat_dim)
    action = torch.rand(64, agent.cfg.horizon, agent.cfg.action_dim) * 2 - 1
    return feat, action


def test_lamp_blend_is_the_raw_weighted_sum():
    agent = agent_with()
    assert agent.cfg.expl.blend == "lamp" and not hasattr(agent, "intr_norm")
    agent._pending = []
    feat, action = imagined(agent)
    reward, metrics = agent.imagined_reward(feat, action)
    with torch.no_grad():
        expected = 0.9 * agent.explorer.disagreement(feat[:, :-1], action) + 0.1 * agent.world_model.reward(feat[:, 1:])
    torch.testing.assert_close(reward, expected)
    assert agent._pending == []  # no per-stream normaliser state to commit
    assert {"intr_std", "extr_std", "intr_extr_ratio"} <= set(metrics)


@pytest.mark.parametrize("constant", ["intrinsic", "extrinsic"])
def test_with_one_stream_constant_the_blend_varies_exactly_as_the_other(constant, monkeypatch):
    agent = agent_with()
    agent._pending = []
    feat, action = imagined(agent)
    varying = torch.randn(64, agent.cfg.horizon) * 3 - 5  # R3M-like logits: O(1-10), mostly negative
    if constant == "intrinsic":
        monkeypatch.setattr(agent.explorer, "disagreement", lambda f, a: torch.full(f.shape[:-1], 0.01))
        monkeypatch.setattr(agent.world_model, "reward", lambda f: varying)
        scale = 0.1
    else:
        monkeypatch.setattr(agent.explorer, "disagreement", lambda f, a: varying)
        monkeypatch.setattr(agent.world_model, "reward", lambda f: torch.full(f.shape[:-1], -4.0))
        scale = 0.9
    reward, metrics = agent.imagined_reward(feat, action)
    torch.testing.assert_close(reward.std(), scale * varying.std())
    torch.testing.assert_close(reward - reward.mean(), scale * (varying - varying.mean()))
    other = "intr_std" if constant == "intrinsic" else "extr_std"
    assert float(metrics[other]) == pytest.approx(0.0, abs=1e-6)


def test_per_stream_blend_divides_each_stream_by_its_running_magnitude(monkeypatch):
    agent = agent_with(blend="per_stream", norm_decay=0.0)  # decay 0: the magnitude is this batch's mean |x|
    agent._pending = []
    feat, action = imagined(agent)
    intr = torch.full((64, agent.cfg.horizon), 0.01)
    extr = torch.full((64, agent.cfg.horizon), -5.0)
    monkeypatch.setattr(agent.explorer, "disagreement", lambda f, a: intr)
    monkeypatch.setattr(agent.world_model, "reward", lambda f: extr)
    reward, _ = agent.imagined_reward(feat, action)
    torch.testing.assert_close(reward, torch.full_like(reward, 0.9 * 1.0 + 0.1 * -1.0))
    assert len(agent._pending) == 2


def test_sum_norm_divides_the_blend_by_its_running_magnitude(monkeypatch):
    agent = agent_with(sum_norm=True, norm_decay=0.0)
    agent._pending = []
    feat, action = imagined(agent)
    monkeypatch.setattr(agent.explorer, "disagreement", lambda f, a: torch.full(f.shape[:-1], 1.0))
    monkeypatch.setattr(agent.world_model, "reward", lambda f: torch.full(f.shape[:-1], -3.0))
    reward, _ = agent.imagined_reward(feat, action)  # raw blend 0.9 - 0.3 = 0.6, divided by |0.6|
    torch.testing.assert_close(reward, torch.ones_like(reward))


def test_blend_metrics_are_logged_by_a_train_step():
    agent = agent_with()
    metrics = agent.train_step(make_replay().sample(3, 8))
    for key in ("behavior/intr_std", "behavior/extr_std"):
        assert torch.isfinite(metrics[key]) and float(metrics[key]) >= 0
    if float(metrics["behavior/extr_std"]) > 0:
        ratio = metrics["behavior/intr_std"] / metrics["behavior/extr_std"]
        torch.testing.assert_close(metrics["behavior/intr_extr_ratio"], ratio)
    else:  # the reward head starts at zero: the extrinsic term has no spread yet, the ratio is undefined
        assert torch.isnan(metrics["behavior/intr_extr_ratio"])


def test_unknown_blend_is_refused():
    with pytest.raises(ValueError, match=r"agent\.expl\.blend must be one of \('lamp', 'per_stream'\)"):
        Agent(make_config("tiny", expl={"blend": "sum"}), SPACE)


def test_clip_action_bounds_values_and_passes_the_gradient_straight_through():
    x = torch.tensor([-3.0, -0.5, 0.2, 1.7], requires_grad=True)
    y = clip_action(x)
    assert torch.equal(y.detach(), torch.tensor([-1.0, -0.5, 0.2, 1.0]))
    (y * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 2.0, 3.0, 4.0]))


@pytest.mark.parametrize("actor_grad", ["dynamics", "reinforce"])
def test_imagined_actions_stay_in_the_box_and_the_actor_still_learns(actor_grad):
    torch.manual_seed(0)
    agent = Agent(make_config("tiny", actor_grad=actor_grad, max_std=3.0, min_std=2.0), SPACE)
    with torch.no_grad():  # a wide policy: most raw samples would leave [-1, 1]
        agent.behavior.actor.out.bias.zero_()
    start = agent.world_model.rssm.initial(256)
    _, actions, outs = agent.imagine(start["stoch"], start["deter"], None)
    assert actions.abs().max() <= 1.0
    raw = agent.behavior.make_dist(outs).sample()
    assert (raw.abs() > 1).float().mean() > 0.2  # the clip was really exercised
    agent.train_step(make_replay().sample(3, 8))
    grads = [p.grad for p in agent.behavior.actor.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_hidden_layers_have_a_learnable_shift():
    for norm in ("rms", "layer"):
        mlp = MLP(5, 8, 2, out=3, norm=norm)
        linear, normlayer = mlp.hidden[0], mlp.hidden[1]
        has_shift = linear.bias is not None or getattr(normlayer, "bias", None) is not None
        assert has_shift, norm
        assert (linear.bias is not None) == (norm == "rms")  # one shift, not two
    conv = ConvEncoder(3, 16, 4, norm="rms")
    assert conv.net[0].bias is not None
    agent = Agent(make_config("tiny"), SPACE)
    rssm = agent.world_model.rssm
    assert rssm.img_in[0].bias is not None and rssm.gru.bias is not None and rssm.obs_embed.bias is not None


def test_adam_eps_follow_dreamerv3():
    agent = agent_with()
    eps = {name: opt.param_groups[0]["eps"] for name, opt in agent.optimizers.items()}
    assert eps == {"model": 1e-8, "actor": 1e-5, "critic": 1e-5, "explorer": 1e-5}


def test_learning_rates_lamp_at_small_sizes_dreamerv3_at_large():
    for blocks in ([], ["tiny"], ["small"], ["pretrain"], ["finetune", "small"]):
        agent = build_config(blocks).agent
        assert (agent.model_lr, agent.actor_lr, agent.critic_lr) == (3e-4, 1e-4, 1e-4), blocks
    for blocks in (["size12m"], ["pretrain", "size25m"], ["size50m"], ["dreamerv3_lr"]):
        agent = build_config(blocks).agent
        assert (agent.model_lr, agent.actor_lr, agent.critic_lr) == (1e-4, 3e-5, 3e-5), blocks


@pytest.mark.parametrize("blend, sum_norm", [("per_stream", False), ("lamp", True)])
def test_reward_normalisers_also_apply_without_an_ensemble(blend, sum_norm, monkeypatch):
    """Fine-tuning (intr_scale 0: no ensemble) keeps normalising the reward it has, as the original's actor-critic
    did: sum_norm divides the reward by its running magnitude, per_stream divides the extrinsic stream by its own."""
    torch.manual_seed(0)
    expl = {"intr_scale": 0.0, "extr_scale": 1.0, "blend": blend, "sum_norm": sum_norm, "norm_decay": 0.0}
    agent = Agent(make_config("tiny", expl=expl), SPACE)
    assert agent.explorer is None and not hasattr(agent, "intr_norm")
    assert hasattr(agent, "extr_norm") == (blend == "per_stream") and hasattr(agent, "sum_norm") == sum_norm
    agent._pending = []
    feat, action = imagined(agent)
    monkeypatch.setattr(agent.world_model, "reward", lambda f: torch.full(f.shape[:-1], -4.0))
    reward, metrics = agent.imagined_reward(feat, action)
    torch.testing.assert_close(reward, torch.full_like(reward, -1.0))  # -4 divided by its magnitude 4
    assert len(agent._pending) == 1 and metrics == {}


def test_intr_extr_ratio_is_undefined_not_infinite_when_the_extrinsic_term_is_off():
    agent = agent_with(extr_scale=0.0)  # Plan2Explore alone
    agent._pending = []
    _, metrics = agent.imagined_reward(*imagined(agent))
    assert torch.isnan(metrics["intr_extr_ratio"]) and float(metrics["extr_std"]) == 0.0
    assert float(metrics["intr_std"]) > 0


def test_ensemble_pairs_across_an_episode_boundary_are_left_out():
    agent = agent_with()
    explorer = agent.explorer
    b, t = 2, 6
    feat = torch.randn(b, t, agent.world_model.rssm.feat_dim)
    action = torch.rand(b, t, agent.cfg.action_dim) * 2 - 1
    target = torch.randn(b, t, agent.cfg.stoch * agent.cfg.classes)
    is_first = torch.zeros(b, t)
    is_first[0, 3] = 1.0  # sequence 0 runs into a new episode at t=3: the pair (2, 3) is no transition
    with torch.no_grad():
        masked = explorer.loss(feat, action, target, is_first)
        moved = target.clone()
        moved[0, 3] += 100.0  # whatever the new episode starts with does not count
        assert torch.equal(explorer.loss(feat, action, moved, is_first), masked)
        assert not torch.equal(explorer.loss(feat, action, moved), explorer.loss(feat, action, target))
        inp = torch.cat([feat[:, :-1], action[:, :-1]], -1).reshape(-1, feat.shape[-1] + action.shape[-1])
        error = (explorer.ensemble(inp) - target[:, 1:].reshape(1, -1, target.shape[-1])).pow(2).sum(-1)
        keep = torch.ones(b * (t - 1), dtype=torch.bool)
        keep[2] = False  # sequence 0, pair (2, 3)
        torch.testing.assert_close(masked, error[:, keep].mean(-1).sum())
