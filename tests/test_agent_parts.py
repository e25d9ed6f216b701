"""Unit tests for the agent's building blocks at tiny sizes: nets, world model, actor-critic, explorer."""

import math

import pytest
import torch

from lamp.agent.behavior import ActorCritic, ReturnNorm, lambda_return, replay_return
from lamp.agent.config import make_config
from lamp.agent.explorer import Ensemble, Explorer
from lamp.agent.nets import BoundedNormal, ConvDecoder, ConvEncoder, TwoHot, symexp, symlog
from lamp.agent.world_model import WorldModel, kl_loss

SPACE = {"image": (64, 64, 3), "state": (5,), "lang": (768,)}


def batch(b=2, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randint(0, 256, (b, t, 64, 64, 3), dtype=torch.uint8, generator=g),
        "state": torch.randn(b, t, 5, generator=g),
        "lang": torch.randn(b, t, 768, generator=g),
        "action": torch.rand(b, t, 4, generator=g) * 2 - 1,
        "reward": torch.randn(b, t, generator=g),
        "is_first": torch.zeros(b, t, dtype=torch.bool),
        "is_terminal": torch.zeros(b, t, dtype=torch.bool),
    }


def test_symlog_symexp_round_trip():
    x = torch.tensor([-1e6, -123.4, -1.0, -1e-3, 0.0, 1e-3, 2.5, 1e4])
    torch.testing.assert_close(symexp(symlog(x)), x, rtol=1e-5, atol=1e-6)
    assert symlog(torch.tensor(math.e - 1)).item() == pytest.approx(1.0)


def test_two_hot_round_trip_and_weights():
    twohot = TwoHot(255)
    y = torch.tensor([-500.0, -3.3, 0.0, 0.7, 42.0, 1e5])
    enc = twohot.encode(y)
    assert enc.shape == (6, 255)
    torch.testing.assert_close(enc.sum(-1), torch.ones(6))
    assert ((enc > 0).sum(-1) <= 2).all()
    decoded = symexp((enc * twohot.bins).sum(-1))
    torch.testing.assert_close(decoded, y, rtol=1e-4, atol=1e-4)
    # values beyond the last bin are clamped to it
    assert twohot.encode(torch.tensor([1e12]))[0, -1] == 1.0
    # the loss is minimised by logits that put the target's two-hot mass in place
    logits = torch.log(enc + 1e-9)
    assert (twohot.loss(logits, y) < twohot.loss(torch.zeros_like(logits), y)).all()


def test_two_hot_in_raw_space_round_trips_and_is_zero_when_symmetric():
    twohot = TwoHot(255, space="symexp")
    bins = twohot.bins
    assert bins[127] == 0 and torch.equal(bins, -bins.flip(0)) and (bins.diff() > 0).all()
    torch.testing.assert_close(bins[-1], symexp(torch.tensor(20.0)))
    y = torch.tensor([-500.0, -3.3, 0.0, 0.7, 42.0, 1e5])
    enc = twohot.encode(y)
    torch.testing.assert_close(enc.sum(-1), torch.ones(6))
    assert ((enc > 0).sum(-1) <= 2).all()
    torch.testing.assert_close((enc * bins).sum(-1), y, rtol=1e-5, atol=1e-4)  # linear in raw space
    # the two neighbours of 0.7 in raw space are 0 and ~0.17-spaced bins: the target sits between them, linearly
    lo = int((bins <= 0.7).sum()) - 1
    assert bins[lo] <= 0.7 < bins[lo + 1]
    w = (bins[lo + 1] - 0.7) / (bins[lo + 1] - bins[lo])
    torch.testing.assert_close(enc[3, lo], w)
    # a zero-initialised head (uniform probabilities) predicts exactly 0 despite bins of +-4.9e8
    assert twohot.mean(torch.zeros(3, 255)).abs().max().item() == 0.0
    # the prediction is the probability-weighted mean of the bins, not symexp of a mean in symlog space
    logits = torch.full((255,), -1e9)
    logits[[127, 128]] = 0.0  # half on 0, half on the first positive bin
    torch.testing.assert_close(twohot.mean(logits), bins[128] / 2)
    assert TwoHot(255).mean(logits) != twohot.mean(logits)  # symlog placement: symexp(b/2)
    with pytest.raises(ValueError, match=r"agent\.twohot"):
        TwoHot(255, space="raw")


def test_replay_return_hand_computed_on_four_steps():
    reward = torch.tensor([[9.0, 1.0, 2.0, 3.0]])  # reward[0] arrived before the window: never used
    boot = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    false = torch.zeros(1, 4, dtype=torch.bool)
    ret = replay_return(reward, false, false, boot, discount=0.5, lam=0.5)
    # R3 = boot3 = 40; R2 = 3 + .5(.5·40 + .5·40) = 23; R1 = 2 + .5(.5·30 + .5·23) = 15.25;
    # R0 = 1 + .5(.5·20 + .5·15.25) = 9.8125
    torch.testing.assert_close(ret, torch.tensor([[9.8125, 15.25, 23.0]]))
    # the episode ends at step 2 (a time limit): R1 bootstraps from boot2 alone, R0 uses R1
    last = torch.tensor([[False, False, True, False]])
    ret = replay_return(reward, last, false, boot, discount=0.5, lam=0.5)
    torch.testing.assert_close(ret[:, :2], torch.tensor([[10.25, 17.0]]))  # R1 = 2 + .5·30; R0 = 1 + .5(10 + 8.5)
    # step 2 is terminal: nothing after its reward
    ret = replay_return(reward, last, last, boot, discount=0.5, lam=0.5)
    torch.testing.assert_close(ret[:, :2], torch.tensor([[6.5, 2.0]]))  # R0 = 1 + .5(.5·20 + .5·2)


def test_replay_value_loss_is_the_critic_loss_on_replay_returns_without_episode_ends():
    cfg = make_config("tiny", discount=0.5, lam=0.5, slowreg=0.0)
    ac = ActorCritic(cfg, feat_dim=8)
    inp = torch.randn(1, 4, 8)
    reward, boot = torch.tensor([[9.0, 1.0, 2.0, 3.0]]), torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    last = torch.tensor([[False, False, True, False]])
    loss, metrics = ac.replay_loss(inp, reward, last, torch.zeros_like(last), boot)
    target = torch.tensor([10.25, 17.0])  # the hand-computed returns of states 0 and 1; state 2 ends the episode
    expected = ac.twohot.loss(ac.critic(inp[0, :2]), target).sum() / 3
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(metrics["replay_return"], torch.tensor([10.25, 17.0, 23.0]).mean())
    loss.backward()  # only the critic learns from it
    assert ac.critic.out.weight.grad.abs().sum() > 0 and ac.actor.out.weight.grad is None
    for repval_grad in (True, False):  # DreamerV3's repval_grad: the loss also reaches the posterior features
        ac = ActorCritic(make_config("tiny", repval_grad=repval_grad), feat_dim=8)
        torch.nn.init.normal_(ac.critic.out.weight)  # the zero-initialised output layer passes no gradient back
        feat = inp.clone().requires_grad_()
        ac.replay_loss(feat, reward, last, torch.zeros_like(last), boot)[0].backward()
        assert (feat.grad is not None and feat.grad[:, :2].abs().sum() > 0) == repval_grad


def test_conv_encoder_decoder_shapes():
    enc = ConvEncoder(3, 64, depth=4)
    out = enc(torch.zeros(5, 64, 64, 3, dtype=torch.uint8))
    assert out.shape == (5, 8 * 4 * 4 * 4) == (5, enc.out_dim)
    dec = ConvDecoder(10, 3, 64, depth=4)
    assert dec(torch.zeros(5, 10)).shape == (5, 64, 64, 3)


def test_bounded_normal_matches_torch_normal():
    out = torch.randn(7, 8)
    dist = BoundedNormal(out)
    assert dist.mode().abs().max() <= 1
    assert ((dist.std >= 0.1) & (dist.std <= 1.0)).all()
    x = dist.sample()
    ref = torch.distributions.Normal(dist.mean, dist.std)
    torch.testing.assert_close(dist.log_prob(x), ref.log_prob(x).sum(-1))
    torch.testing.assert_close(dist.entropy(), ref.entropy().sum(-1))


def test_world_model_shapes_and_unimix():
    cfg = make_config("tiny")
    wm = WorldModel(cfg, SPACE)
    total, losses, out = wm.loss(batch())
    assert total.ndim == 0 and torch.isfinite(total)
    assert set(losses) == {"dyn", "rep", "image", "vector", "reward", "cont"}
    feat_dim = cfg.stoch * cfg.classes + cfg.deter
    assert out["feat"].shape == (2, 6, feat_dim)
    assert out["stoch"].shape == (2, 6, cfg.stoch * cfg.classes)
    # one-hot samples per latent, probabilities never below the 1% uniform floor
    assert torch.allclose(out["stoch"].unflatten(-1, (cfg.stoch, cfg.classes)).sum(-1), torch.ones(2, 6, cfg.stoch))
    probs = wm.rssm.probs(out["post_logits"] * 100)
    assert probs.min() >= 0.01 / cfg.classes - 1e-7


def test_each_vector_key_has_its_own_encoder():
    """The prompt embedding cannot change how the proprio state is encoded (no shared input norm)."""
    wm = WorldModel(make_config("tiny"), SPACE)
    data = batch()
    other = {**data, "lang": data["lang"] * 10 + 3}
    units = make_config("tiny").units
    state_part = slice(wm.embed_dim - 2 * units, wm.embed_dim - units)  # after the image part, in key order
    assert wm.vector_keys == ["state", "lang"]
    torch.testing.assert_close(wm.encode(data)[..., state_part], wm.encode(other)[..., state_part])
    assert not torch.allclose(wm.encode(data)[..., -units:], wm.encode(other)[..., -units:])


def test_is_first_resets_the_latent():
    wm = WorldModel(make_config("tiny"), SPACE)
    data = batch(t=6)
    embed = wm.encode(data)
    is_first = torch.zeros(2, 6, dtype=torch.bool)
    is_first[:, 0] = is_first[:, 3] = True
    post = wm.rssm.observe(embed, data["action"], is_first)
    fresh = wm.rssm.observe(embed[:, 3:], data["action"][:, 3:], is_first[:, 3:])
    torch.testing.assert_close(post["deter"][:, 3], fresh["deter"][:, 0])


def test_kl_free_bits():
    wm = WorldModel(make_config("tiny"), SPACE)
    logits = torch.randn(4, 16)
    dyn, rep, raw = kl_loss(wm.rssm, logits, logits, free_nats=1.0)
    assert torch.allclose(raw, torch.zeros(4), atol=1e-6)
    assert torch.equal(dyn, torch.ones(4)) and torch.equal(rep, torch.ones(4))
    far = torch.zeros(4, 16)
    far[:, ::4] = 30.0
    dyn, rep, raw = kl_loss(wm.rssm, far, -far, free_nats=1.0)
    assert (raw > 1.0).all() and torch.allclose(dyn, raw) and torch.allclose(rep, raw)
    # gradients: dyn only reaches the prior, rep only the posterior
    post, prior = far.clone().requires_grad_(), (-far).clone().requires_grad_()
    dyn, rep, _ = kl_loss(wm.rssm, post, prior, free_nats=1.0)
    dyn.sum().backward()
    assert post.grad is None and prior.grad.abs().sum() > 0


def test_lambda_return_hand_computed():
    reward = torch.tensor([[1.0, 2.0, 3.0]])
    cont = torch.tensor([[1.0, 1.0, 0.0]])
    value = torch.tensor([[0.0, 4.0, 8.0, 12.0]])
    ret = lambda_return(reward, cont, value, discount=0.5, lam=0.5)
    # R2 = 3 + 0.5·0·12 = 3; R1 = 2 + 0.5·(0.5·8 + 0.5·3) = 4.75; R0 = 1 + 0.5·(0.5·4 + 0.5·4.75) = 3.1875
    torch.testing.assert_close(ret, torch.tensor([[3.1875, 4.75, 3.0]]))
    td0 = lambda_return(reward, cont, value, discount=0.5, lam=0.0)
    torch.testing.assert_close(td0, torch.tensor([[1 + 0.5 * 4, 2 + 0.5 * 8, 3.0]]))


def test_return_normaliser_percentiles():
    norm = ReturnNorm(decay=0.0)  # no smoothing: exactly this batch's percentiles
    returns = torch.arange(101.0)
    norm.commit(norm.update(returns))
    assert norm.low.item() == pytest.approx(5.0) and norm.high.item() == pytest.approx(95.0)
    assert norm.scale().item() == pytest.approx(90.0)
    norm.commit(norm.update(torch.full((50,), 0.3)))
    assert norm.scale().item() == 1.0  # small ranges are not blown up
    ema = ReturnNorm(decay=0.99)
    for _ in range(3):
        ema.commit(ema.update(returns))
    assert ema.high.item() == pytest.approx(95 * (1 - 0.99**3), rel=1e-4)


def test_ensemble_is_batched_equivalent_of_members():
    ens = Ensemble(members=3, inp=6, units=5, layers=2, out=4)
    x = torch.randn(9, 6)
    out = ens(x)
    assert out.shape == (3, 9, 4)
    for k in range(3):
        h = x @ ens.weights[0][k] + ens.biases[0][k]
        for i in (1, 2):
            h = torch.nn.functional.silu(h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-3) * ens.scales[i - 1][k])
            h = h @ ens.weights[i][k] + ens.biases[i][k]
        torch.testing.assert_close(out[k], h)


def test_disagreement_zero_for_identical_heads_positive_otherwise():
    cfg = make_config("tiny", expl={"intr_scale": 1.0})
    explorer = Explorer(cfg, feat_dim=10, target_dims={"stoch": 7, "deter": 3, "embed": 2})
    feat, action = torch.randn(2, 5, 10), torch.randn(2, 5, 4)
    dis = explorer.disagreement(feat, action)
    assert dis.shape == (2, 5) and (dis > 0).all()
    with torch.no_grad():
        for group in (explorer.ensemble.weights, explorer.ensemble.biases, explorer.ensemble.scales):
            for p in group:
                p.copy_(p[:1].expand_as(p))
    assert explorer.disagreement(feat, action).abs().max() < 1e-7  # zero up to float rounding
    loss = explorer.loss(feat, action, torch.randn(2, 5, 7))
    assert loss.ndim == 0 and loss > 0
    with pytest.raises(ValueError, match=r"expl\.target"):
        Explorer(make_config("tiny", expl={"target": "pixels"}), 10, {"stoch": 7})


def test_configs_yaml_agrees_with_module_defaults():
    from lamp.agent.config import AGENT_DEFAULTS, REPLAY_DEFAULTS, SIZES, to_cfg
    from lamp.config import build_config

    for size in SIZES:
        cfg = build_config([size])  # OmegaConf DictConfig, as the CLI builds it
        expected = make_config(size)
        assert to_cfg(cfg.agent) == expected, size
    cfg = build_config([])
    assert to_cfg(cfg.agent) == to_cfg(AGENT_DEFAULTS) and dict(cfg.replay) == REPLAY_DEFAULTS


def test_linear_probe_keeps_the_pretrained_output_layer_and_reset_critic_out_zeroes_it():
    """As the original ran it: `--freeze critic_hidden` stops the hidden critic layers and keeps the pretrained
    output layer (which trains); `--reset critic_out` starts that layer from zero (critic and slow critic)."""
    from lamp.agent.agent import Agent
    from lamp.errors import UsageError
    from lamp.source import freeze_part, reset_part

    space = {"image": (64, 64, 3), "state": (7,)}
    agent = Agent(make_config("tiny"), space)
    critic = agent.behavior.critic
    with torch.no_grad():
        critic.out.weight.normal_(0, 0.3)  # a "pretrained" output layer
    pretrained = {k: v.clone() for k, v in critic.state_dict().items()}
    freeze_part(agent, "critic_hidden")
    assert all(torch.equal(v, pretrained[k]) for k, v in critic.state_dict().items())  # nothing re-initialised
    trains = {name for name, p in critic.named_parameters() if p.requires_grad}
    assert trains and all(name.startswith("out.") for name in trains)
    reset_part(agent, "critic_out")
    assert not critic.out.weight.any() and torch.equal(agent.behavior.slow_critic.out.weight, critic.out.weight)
    hidden = [k for k in pretrained if not k.startswith("out.")]
    assert all(torch.equal(critic.state_dict()[k], pretrained[k]) for k in hidden)
    with pytest.raises(UsageError, match="--reset 'critic' is unknown; valid: reward_head, critic_out"):
        reset_part(None, "critic", check_only=True)
