"""The `lamp` command: help texts, bad-input exits (one line, code 2, nothing written), honest stubs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lamp.cli import _split_configs, app


def run(args: list[str]):
    return CliRunner().invoke(app, _split_configs(args), env={"COLUMNS": "250"})


def test_help_lists_every_subcommand() -> None:
    result = run(["--help"])
    assert result.exit_code == 0
    for command in ("pretrain", "finetune", "eval", "ablate", "score", "doctor"):
        assert command in result.output
    pretrain_help = run(["pretrain", "--help"])
    assert pretrain_help.exit_code == 0
    assert "--configs" in pretrain_help.output and "--agent.lr 3e-4" in pretrain_help.output


def test_split_configs_accepts_dreamer_style_lists() -> None:
    assert _split_configs(["pretrain", "--configs", "a", "b", "--x.y", "1"]) == [
        "pretrain",
        "--configs",
        "a",
        "--configs",
        "b",
        "--x.y",
        "1",
    ]
    assert _split_configs(["--configs=a,b"]) == ["--configs", "a", "--configs", "b"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--configs", "nosuchblock"], "error: unknown config block 'nosuchblock'"),
        (["--run.stepz", "3"], "error: unknown config key 'run.stepz' (the command line); did you mean 'run.steps'?"),
        (["--run.steps", "many"], "error: config key 'run.steps' expects an integer"),
        (["--config-file", "/no/such/file.yaml"], "error: config file '/no/such/file.yaml' does not exist"),
        (["--agent.expl.blend", "sum"], "error: agent.expl.blend is 'sum'; valid: lamp, per_stream"),
        (["--scorer.image_size", "100"], "error: scorer.image_size 100 must be a whole multiple of env.size 64"),
    ],
)
def test_pretrain_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, args: list[str], message: str):
    logdir = tmp_path / "run"
    result = run(["pretrain", *args, "--logdir", str(logdir)])
    assert result.exit_code == 2
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0]
    assert "Traceback" not in result.output
    assert not logdir.exists()


def test_malformed_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [\n")
    result = run(["pretrain", "--config-file", str(bad), "--logdir", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert f"error: config file '{bad}' is not valid YAML at line 2" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["finetune", "--from", "x"], "Missing option '--task'"),
        (["eval", "--task", "push_button"], "Missing option '--checkpoint'"),
        (["ablate"], "Missing argument 'ABLATION_YAML'"),
    ],
)
def test_required_arguments(args: list[str], message: str) -> None:
    result = run(args)
    assert result.exit_code == 2 and message in result.output


def test_pretrain_prints_the_config_and_checks_the_task(tmp_path: Path) -> None:
    result = run(
        [
            "pretrain",
            "--configs",
            "smoke",
            "cpu",
            "--seed",
            "3",
            "--env.task",
            "push_button",
            "--logdir",
            str(tmp_path / "r"),
        ]
    )
    assert result.exit_code == 2 and "use lamp finetune for tasks" in result.output
    assert not (tmp_path / "r").exists()
    no_logdir = run(["pretrain", "--configs", "smoke"])
    assert no_logdir.exit_code == 2 and "error: no run directory given; pass --logdir DIR" in no_logdir.output
    assert "resolved config" in no_logdir.output and "kind: tiny" in no_logdir.output  # printed before the run


def test_version() -> None:
    result = run(["--version"])
    assert result.exit_code == 0 and result.output.startswith("lamp ")
