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
