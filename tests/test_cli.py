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
        # issue 12's battery: these ran (or crashed after writing LOGDIR) before the range checks
        (
            ["--configs", "smoke", "--run.steps", "-5"],
            "error: config key 'run.steps' must be an integer ≥ 1 but the command line gives -5",
        ),
        (
            ["--configs", "smoke", "--agent.batch_size", "0"],
            "error: config key 'agent.batch_size' must be an integer ≥ 1 but the command line gives 0",
        ),
        (
            ["--configs", "smoke", "--agent.units", "0"],
            "error: config key 'agent.units' must be an integer ≥ 1 but the command line gives 0",
        ),
        (
            ["--configs", "smoke", "--agent.model_lr", "-1e-4"],
            "error: config key 'agent.model_lr' must be a number > 0 but the command line gives -0.0001",
        ),
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


def one_error(result) -> str:
    """The single `error:` line of a refused command (and no traceback)."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, AssertionError | OSError)
    return errors[0]


def test_device_this_machine_lacks_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run(["pretrain", "--configs", "smoke", "--device", "cuda", "--logdir", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert one_error(result) == (
        "error: device is 'cuda' but this machine has no such device (this torch has no CUDA); available here: cpu"
    )
    assert not (tmp_path / "run").exists()


def test_logdir_that_is_a_file_or_under_an_unwritable_parent(tmp_path: Path) -> None:
    afile = tmp_path / "taken"
    afile.write_text("not a folder")
    result = run(["pretrain", "--configs", "smoke", "--logdir", str(afile)])
    assert result.exit_code == 2
    assert one_error(result) == f"error: --logdir '{afile}' is a file, not a folder; choose another --logdir"
    assert afile.read_text() == "not a folder"
    result = run(["pretrain", "--configs", "smoke", "--logdir", "/proc/lamp-test/run"])
    assert result.exit_code == 2
    assert "error: --logdir '/proc/lamp-test/run' is not writable (its nearest existing parent is '/proc')" in (
        one_error(result)
    )


def test_prompt_file_that_is_not_utf8(tmp_path: Path) -> None:
    style = tmp_path / "latin1.yaml"
    style.write_bytes("templates: ['pick up the {noun}']\nnouns: {mug: [caf\u00e9 mug]}\n".encode("latin-1"))
    offset = style.read_bytes().index(b"\xe9")
    result = run(["pretrain", "--configs", "smoke", "--prompts", str(style), "--logdir", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert one_error(result) == (
        f"error: prompt file '{style}' is not UTF-8 (byte 0xe9 at offset {offset}); save it as UTF-8"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pretrain_steps": -5}, "'pretrain_steps' must be an integer ≥ 1, got -5"),
        ({"seeds": [0, "one"]}, "'seeds' must be an integer ≥ 0, got 'one'"),
        ({"eval_every": 0}, "'eval_every' must be an integer ≥ 1, got 0"),
        (
            {"flags": ["--agent.batch_size", "0"]},
            "config key 'agent.batch_size' must be an integer ≥ 1 but the command line gives 0",
        ),
    ],
)
def test_ablation_file_numbers_are_checked_before_any_run(tmp_path: Path, change: dict, message: str) -> None:
    import json

    spec = {"styles": ["similar"], "seeds": [0], "tasks": ["push_button"], "configs": ["smoke"]}
    spec.update({"pretrain_steps": 60, "finetune_steps": 60, **change})
    path = tmp_path / "ablation.yaml"
    path.write_text(json.dumps(spec))
    result = run(["ablate", str(path), "--logdir", str(tmp_path / "grid")])
    assert result.exit_code == 2
    line = one_error(result)
    assert line.startswith(f"error: ablation file '{path}': ") and message in line
    assert not (tmp_path / "grid").exists()
