"""Config resolution: merge order, overrides, validation messages, and the saved config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from lamp import config as C
from lamp.errors import UsageError


def test_defaults_have_every_section_and_blocks_are_valid() -> None:
    # Every named block must only set keys that exist in defaults, and selecting it must set exactly those values.
    blocks = yaml.safe_load(C.CONFIGS_FILE.read_text())
    for name in C.block_names():
        resolved = C.flat_keys(OmegaConf.to_container(C.build_config([name])))
        for key, value in C.flat_keys(blocks[name]).items():
            assert resolved[key] == value, (name, key)
    assert {"smoke", "cpu", "gpu"} <= set(C.block_names())


def test_blocks_apply_in_order_and_flags_win(tmp_path: Path) -> None:
    assert C.build_config(["cpu", "gpu"]).device == "cuda"
    assert C.build_config(["gpu", "cpu"]).device == "cpu"
    assert C.build_config(["smoke"]).run.steps == 1000
    f = tmp_path / "mine.yaml"
    f.write_text("run:\n  steps: 777\nseed: 5\n")
    cfg = C.build_config(["smoke"], f, ["--seed", "9"])
    assert cfg.run.steps == 777  # the file comes after the blocks
    assert cfg.seed == 9  # flags come last
    assert cfg.run.log_every == 100  # untouched keys keep the block's value


def test_flag_forms_and_value_types() -> None:
    cfg = C.build_config([], flags=["--run.steps", "1e4", "--deterministic=true", "--device", "cuda:1"])
    assert cfg.run.steps == 10000 and isinstance(cfg.run.steps, int)
    assert cfg.deterministic is True
    assert cfg.device == "cuda:1"
    assert C.parse_flags(["--a.b", "3e-4", "--c=[1, 2]"]) == {"a.b": 3e-4, "c": [1, 2]}


def test_resolved_config_is_read_only() -> None:
    cfg = C.build_config(["smoke"])
    with pytest.raises(Exception):  # noqa: B017 (OmegaConf's ReadonlyConfigError)
        cfg.seed = 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"configs": ["smok"]}, "unknown config block 'smok'; did you mean 'smoke'?"),
        ({"configs": ["nosuchblock"]}, "unknown config block 'nosuchblock' (valid: "),
        (
            {"flags": ["--run.stepz", "5"]},
            "unknown config key 'run.stepz' (the command line); did you mean 'run.steps'?",
        ),
        (
            {"flags": ["--run.steps", "abc"]},
            "config key 'run.steps' expects an integer but the command line gives 'abc'",
        ),
        ({"flags": ["--run.steps", "1.5"]}, "config key 'run.steps' expects an integer"),
        ({"flags": ["--deterministic", "2"]}, "config key 'deterministic' expects true/false"),
        ({"flags": ["--run", "5"]}, "config key 'run' is a section, not a value"),
        ({"flags": ["--seed"]}, "flag '--seed' has no value; write it as --seed VALUE"),
        ({"flags": ["seed", "3"]}, "unexpected argument 'seed'"),
    ],
)
def test_bad_input_messages(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError) as info:
        C.build_config(**kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist; pass an existing YAML file to --config-file"):
        C.build_config(config_file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("run:\n  steps: [1\n")
    with pytest.raises(UsageError, match=r"is not valid YAML at line 3, column 1"):
        C.build_config(config_file=bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(UsageError, match="must be a mapping of keys"):
        C.build_config(config_file=listy)
    typo = tmp_path / "typo.yaml"
    typo.write_text("run:\n  stepss: 3\n")
    with pytest.raises(UsageError, match=r"unknown config key 'run.stepss' \(file '.*typo.yaml'\); did you mean"):
        C.build_config(config_file=typo)


def test_save_config_round_trips(tmp_path: Path) -> None:
    cfg = C.build_config(["smoke"], flags=["--seed", "4"], overrides={"logdir": str(tmp_path)})
    path = C.save_config(cfg, tmp_path / "run")
    assert path == tmp_path / "run" / "config.yaml"
    assert yaml.safe_load(path.read_text()) == OmegaConf.to_container(cfg)
    assert C.load_saved_config(tmp_path / "run").seed == 4
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp.yaml")]  # no temp file left behind
    with pytest.raises(UsageError, match=r"has no config.yaml; is it a lamp run directory\?"):
        C.load_saved_config(tmp_path / "elsewhere")


def _bad_values(key: str) -> list[float]:
    """Values just outside a key's range (as the key's own type), e.g. 0 for 'integer ≥ 1', 1 for '[0, 1)'."""
    allowed, integer = C.RANGES[key], isinstance(C.flat_keys(C.defaults())[key], int)
    step = 1 if integer else 0.5
    bad = []
    if allowed.low is not None:
        bad.append(allowed.low if allowed.low_open else allowed.low - step)
    if allowed.high is not None:
        bad.append(allowed.high if allowed.high_open else allowed.high + step)
    if allowed.pow2:
        bad.append(100)
    return [int(v) if integer else float(v) for v in bad]


def test_every_numeric_key_has_a_range_and_its_default_is_in_it() -> None:
    # A new numeric key in lamp/configs.yaml fails here until it gets a RANGES entry in lamp/config.py.
    numeric = {k: v for k, v in C.flat_keys(C.defaults()).items() if C.is_numeric(v)}
    assert sorted(set(numeric) - set(C.RANGES)) == [], "numeric config keys without a RANGES entry"
    assert sorted(set(C.RANGES) - set(numeric)) == [], "RANGES entries that are not numeric keys of defaults"
    for key, value in numeric.items():
        assert value in C.RANGES[key], (key, value)
        assert _bad_values(key), key  # every range rules something out


@pytest.mark.parametrize("key", sorted(C.RANGES))
def test_each_range_refuses_a_bad_value_with_one_line(key: str) -> None:
    for bad in _bad_values(key):
        with pytest.raises(UsageError) as info:
            C.build_config(["smoke"], flags=[f"--{key}", str(bad)])
        message = str(info.value)
        assert message.startswith(f"config key '{key}' must be ") and f"the command line gives {bad!r}" in message
        assert "\n" not in message


def test_range_errors_name_the_file_and_nan_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("agent:\n  model_lr: -1.0e-4\n")
    with pytest.raises(UsageError, match=r"'agent.model_lr' must be a number > 0 but file '.*mine.yaml' gives -0.0001"):
        C.build_config(config_file=f)
    with pytest.raises(UsageError, match=r"'agent.discount' must be a number in \(0, 1\]"):
        C.build_config(flags=["--agent.discount", ".nan"])
    with pytest.raises(UsageError, match=r"'env.size' must be a power of two in \[8, 1024\] but .* gives 100"):
        C.build_config(flags=["--env.size", "100"])
    assert C.build_config(flags=["--env.size", "128", "--run.save_minutes", "0"]).env.size == 128


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--agent.min_std", "2.0"], "'agent.min_std' (2.0) must be at most 'agent.max_std' (1.0)"),
        (["--agent.retnorm_lo", "0.95"], "'agent.retnorm_lo' (0.95) must be below 'agent.retnorm_hi' (0.95)"),
        (["--replay.capacity", "10"], "'agent.batch_length' (64) must be at most 'replay.capacity' (10)"),
    ],
)
def test_ordered_keys(flags: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        C.build_config(flags=flags)
    assert message in str(info.value)


def test_devices_this_machine_lacks_are_one_line() -> None:
    import torch

    C.check_device("device", "cpu")
    C.check_device("scorer.device", "auto", allow_auto=True)
    with pytest.raises(UsageError, match=r"device 'gpu0' is not a device name; available here: cpu"):
        C.check_device("device", "gpu0")
    with pytest.raises(UsageError, match=r"device is 'cuda:99' but this machine has no such device.*available here"):
        C.check_device("device", "cuda:99")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError) as info:
            C.check_device("device", "cuda")
        assert str(info.value) == (
            "device is 'cuda' but this machine has no such device (this torch has no CUDA); available here: cpu"
        )


def test_files_that_are_not_utf8_say_so_with_the_offset(tmp_path: Path) -> None:
    latin1 = tmp_path / "style.yaml"
    latin1.write_bytes("templates: ['pick up the {noun}']\nnouns: {mug: [caf\u00e9 mug]}\n".encode("latin-1"))
    offset = latin1.read_bytes().index(b"\xe9")
    with pytest.raises(UsageError) as info:
        C.read_yaml_mapping(latin1, "prompt file")
    assert str(info.value) == f"prompt file '{latin1}' is not UTF-8 (byte 0xe9 at offset {offset}); save it as UTF-8"


# ---- a resumed run keeps the settings it started with (lamp.config.resume_config)
LOGDIR = "runs/x"


def saved_run(flags: tuple[str, ...] = ()) -> dict:
    """The config.yaml of a run started with `lamp pretrain --configs smoke` (a plain dict, to edit)."""
    return OmegaConf.to_container(C.build_config(["pretrain", "smoke"], flags=flags, overrides={"logdir": LOGDIR}))


def resume(saved: dict, flags: tuple[str, ...] = (), configs: tuple[str, ...] = ("smoke",), config_file=None):
    """What `lamp pretrain --configs CONFIGS FLAGS --logdir runs/x` resolves to when runs/x holds `saved`."""
    overrides = {"logdir": LOGDIR}
    requested = C.build_config(["pretrain", *configs], config_file, flags, overrides)
    return C.resume_config(saved, requested, C.explicit_keys(config_file, flags, overrides))


def test_resume_keeps_saved_values_and_gives_keys_added_since_todays_default() -> None:
    saved = saved_run()
    saved["agent"]["discount"] = 0.997  # the default when the run started
    del saved["agent"]["repval"], saved["env"]["action_repeat"]  # keys added since
    saved["agent"]["retired"] = 1  # a key removed since
    cfg, notes = resume(saved, ("--run.steps", "5000", "--threads", "2", "--agent.compile", "true"))
    assert cfg.agent.discount == 0.997
    assert cfg.agent.repval == 0.0 and cfg.env.action_repeat == 1
    assert cfg.run.steps == 5000 and cfg.threads == 2 and cfg.agent.compile is True  # runtime keys may change
    assert notes == [
        "resume: runs/x/config.yaml predates keys added since; they take today's defaults: "
        "env.action_repeat 1, agent.repval 0.0",
        "resume: runs/x/config.yaml has keys this lamp no longer knows, ignored: agent.retired",
        "resume: keeping the run's saved agent.discount 0.997 (today's config gives 0.99)",
    ]
    with pytest.raises(Exception):  # noqa: B017 (read-only, like build_config's)
        cfg.seed = 3
    assert resume(saved_run())[1] == []  # nothing changed: nothing to say


def test_named_blocks_of_a_resume_do_not_override_saved_values() -> None:
    saved = saved_run(("--agent.twohot", "symlog"))  # a run started with the 2023 bins
    cfg, notes = resume(saved, configs=("smoke", "dreamerv3_discount", "dreamerv3_critic"))
    assert cfg.agent.discount == 0.99 and cfg.agent.repval == 0.0 and cfg.agent.twohot == "symlog"
    assert len(notes) == 1 and notes[0].startswith("resume: keeping the run's saved agent.discount 0.99 (today's")
    assert "agent.repval 0.0 (today's config gives 0.3), agent.twohot symlog (today's config gives symexp)" in notes[0]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--agent.discount", "0.9"), "has agent.discount 0.997 saved and this command gives 0.9;"),
        (
            ("--seed", "1", "--agent.lam", "0.9"),
            "has agent.lam 0.95 saved and this command gives 0.9 (it also changes seed);",
        ),
        (("--replay.chunk", "64"), "has replay.chunk 256 saved and this command gives 64;"),  # chunk ids on disk
        (("--agent.repval", "0.3"), "has agent.repval 0.0 saved and this command gives 0.3;"),  # key added since
        (("--prompts.style", "single"), "has prompts.style similar saved and this command gives single;"),
    ],
)
def test_resume_refuses_an_explicit_change_of_a_learning_key(flags: tuple[str, ...], message: str) -> None:
    saved = saved_run()
    saved["agent"]["discount"] = 0.997
    del saved["agent"]["repval"]
    with pytest.raises(UsageError) as info:
        resume(saved, flags)
    assert str(info.value) == (
        f"the run in runs/x {message} a resume keeps the keys that change what the run learns: resume without it, "
        "or use a new --logdir"
    )
    assert resume(saved, ("--agent.discount", "0.997"))[0].agent.discount == 0.997  # the saved value is no change


def test_a_config_file_on_a_resume_counts_as_explicit(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("run: {steps: 3000}\nagent: {lam: 0.9}\n")
    with pytest.raises(UsageError, match=r"has agent\.lam 0\.95 saved and this command gives 0\.9;"):
        resume(saved_run(), config_file=f)
    f.write_text("run: {steps: 3000}\nagent: {lam: 0.95}\n")
    assert resume(saved_run(), config_file=f)[0].run.steps == 3000


def test_runtime_keys_name_real_keys() -> None:
    flat = C.flat_keys(C.defaults())
    for name in C.RUNTIME_KEYS:
        assert name in flat or any(k.startswith(name + ".") for k in flat), name
    assert C.is_runtime_key("run.steps") and C.is_runtime_key("agent.precision") and C.is_runtime_key("logdir")
    for key in ("replay.chunk", "replay.capacity", "seed", "agent.discount", "scorer.kind", "finetune.freeze"):
        assert not C.is_runtime_key(key), key


def test_the_task_recipe_is_the_current_dreamerv3_critic_and_pretraining_keeps_the_value_loss_off() -> None:
    """Issue 20's screen: fine-tuning gets the replay value loss (0.3) and raw-space two-hot bins; pretraining (with
    the ensemble, where the loss is refused) keeps it off; the bins are the same in both, so checkpoints transfer."""
    from lamp.config import build_config

    finetune, pretrain = build_config(["finetune"]), build_config(["pretrain"])
    assert finetune.agent.repval == 0.3 and pretrain.agent.repval == 0.0
    assert finetune.agent.twohot == pretrain.agent.twohot == "symexp"
    assert pretrain.agent.expl.intr_scale > 0 and finetune.agent.expl.intr_scale == 0


def test_a_key_whose_default_changed_keeps_its_old_value_for_runs_saved_before_it_existed() -> None:
    """agent.twohot's default is symexp, but a run (or a fine-tuning source) saved before the key existed had its
    bins in symlog space: resuming or fine-tuning from it must keep symlog, or its checkpoint would not load."""
    from lamp.agent.agent import ARCH_BEFORE_KEY

    assert C.VALUE_BEFORE_KEY["agent.twohot"] == ARCH_BEFORE_KEY["twohot"] == "symlog"
    saved = saved_run()
    del saved["agent"]["twohot"]
    cfg, notes = resume(saved)
    assert cfg.agent.twohot == "symlog" and C.defaults().agent.twohot == "symexp"
    assert notes == [
        f"resume: {LOGDIR}/config.yaml predates keys whose default changed; it keeps what lamp did before: "
        "agent.twohot symlog"
    ]
    assert C.build_config(["finetune"], base=saved).agent.twohot == "symlog"  # `lamp finetune --from` such a run
    with pytest.raises(UsageError, match=r"has agent\.twohot symlog saved and this command gives symexp"):
        resume(saved, ("--agent.twohot", "symexp"))


def test_finetuning_from_a_run_gets_its_own_budget_not_the_pretraining_runs():
    """`lamp finetune --from DIR` starts from DIR's saved config; its run length and prefill are the `finetune`
    block's (the original's default length), or a later block's, never the pretraining run's."""
    saved = C.build_config(["pretrain", "smoke"], flags=["--run.steps", "290200", "--run.prefill", "77"])
    finetune = C.build_config(["finetune"], base=saved)
    assert (finetune.run.steps, finetune.run.prefill) == (1_000_000, 1000)
    assert finetune.agent.deter == saved.agent.deter  # the architecture still comes from the source
    smoke = C.build_config(["finetune", "smoke"], base=saved)
    assert (smoke.run.steps, smoke.run.prefill) == (1000, 200)
    flags = C.build_config(["finetune"], flags=["--run.steps", "5000"], base=saved)
    assert flags.run.steps == 5000
