"""The `lamp` command: help texts, bad-input exits (one line, code 2, nothing written), honest stubs."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from typer.testing import CliRunner

from lamp import config as C
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
    assert "--configs" in pretrain_help.output and "--agent.model_lr 3e-4" in pretrain_help.output


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
        (["--agent.twohot", "raw"], "error: agent.twohot is 'raw'; valid: symlog, symexp"),
        (
            ["--configs", "rlbench", "--env.action_repeat", "2"],
            "error: env.action_repeat is 2 but only the metaworld back-end repeats actions",
        ),
        (["--configs", "dreamerv3_critic"], "error: agent.repval > 0 needs the imagined reward to be the replayed one"),
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
    assert "config:" not in no_logdir.output  # the config summary is printed only once the input is checked


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


# ---- a resumed run keeps the settings it started with (the CLI path; the run itself is not started)
@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record the config each training command would run with, instead of running it."""
    import lamp.cli

    calls: list = []

    def run_training(cfg, mode: str, intro=()) -> None:  # prints what the job would print before its loop
        calls.append(cfg)
        for line in intro:
            print(line)

    monkeypatch.setattr(lamp.cli, "run_training", run_training)
    return calls


def make_run(logdir: Path, configs: list[str], edit=None, **overrides) -> Path:
    """A run directory as a training command leaves it (config.yaml and a checkpoint), `edit` applied to the saved
    config (e.g. an older default, or a key removed as if the run predates it)."""
    import torch
    import yaml
    from omegaconf import OmegaConf

    from lamp.config import build_config

    cfg = OmegaConf.to_container(build_config(configs, overrides={"logdir": str(logdir), **overrides}))
    if edit is not None:
        edit(cfg)
    (logdir / "checkpoints").mkdir(parents=True)
    (logdir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    torch.save({"agent": {}, "extra": {}}, logdir / "checkpoints/latest.pt")
    return logdir


def older(cfg: dict) -> None:
    """A run started before the discount default changed and before agent.repval/agent.twohot existed."""
    cfg["agent"]["discount"] = 0.997
    del cfg["agent"]["repval"], cfg["agent"]["twohot"]


def test_resume_runs_the_saved_config_with_todays_defaults_for_new_keys(tmp_path: Path, started: list) -> None:
    logdir = make_run(tmp_path / "run", ["pretrain", "smoke"], older)
    result = run(["pretrain", "--configs", "smoke", "--logdir", str(logdir), "--run.steps", "3000", "--threads", "2"])
    assert result.exit_code == 0, result.output
    (cfg,) = started
    assert cfg.agent.discount == 0.997 and cfg.agent.repval == 0.0 and cfg.agent.twohot == "symlog"
    assert cfg.run.steps == 3000 and cfg.threads == 2
    assert f"resume: {logdir}/config.yaml predates keys added since; they take today's defaults: agent.repval 0.0" in (
        result.output
    )
    assert (  # today's default is symexp, but a run saved before the key existed had its bins in symlog space
        f"resume: {logdir}/config.yaml predates keys whose default changed; it keeps what lamp did before: "
        "agent.twohot symlog" in result.output
    )
    assert "resume: keeping the run's saved agent.discount 0.997 (today's config gives 0.99)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent.discount", "0.9"], "has agent.discount 0.997 saved and this command gives 0.9;"),
        (["--prompts", "single"], "has prompts.style similar saved and this command gives single;"),
        (["--config-file", "FILE"], "has agent.expl.intr_scale 0.9 saved and this command gives 0.5;"),
    ],
)
def test_resume_refuses_a_new_learning_value_in_one_line(
    tmp_path: Path, started: list, args: list[str], message: str
) -> None:
    logdir = make_run(tmp_path / "run", ["pretrain", "smoke"], older)
    (tmp_path / "mine.yaml").write_text("agent: {expl: {intr_scale: 0.5}}\n")
    before = {p: p.read_bytes() for p in logdir.rglob("*") if p.is_file()}
    args = [str(tmp_path / "mine.yaml") if a == "FILE" else a for a in args]
    result = run(["pretrain", "--configs", "smoke", "--logdir", str(logdir), *args])
    assert result.exit_code == 2
    assert one_error(result) == (
        f"error: the run in {logdir} {message} a resume keeps the keys that change what the run learns: resume "
        "without it, or use a new --logdir"
    )
    assert {p: p.read_bytes() for p in logdir.rglob("*") if p.is_file()} == before  # nothing written
    assert started == []


def test_finetune_from_an_older_source_reads_its_saved_values(
    tmp_path: Path, started: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path / "pre", ["pretrain", "smoke"], older)
    result = run(["finetune", "--task", "push_button", "--from", "pre", "--logdir", "ft", "--agent.lam", "0.9"])
    assert result.exit_code == 0, result.output
    cfg = started.pop()
    assert cfg.agent.discount == 0.997  # the source's, not today's default
    assert cfg.agent.twohot == "symlog"  # the source's checkpoint has its bins in symlog space (before the key)
    assert cfg.agent.repval == 0.3  # a new fine-tuning run: today's `finetune` block on top of the source's values
    assert cfg.agent.expl.intr_scale == 0.0 and cfg.env.task == "push_button" and cfg.agent.lam == 0.9
    assert "resume:" not in result.output  # a new run
    # the fine-tune is interrupted, and resumed after the finetune block's agent.repval changed
    make_run(tmp_path / "ft", [], lambda saved: saved.update(OmegaConf.to_container(cfg)))
    monkeypatch.setitem(C._blocks()["finetune"]["agent"], "repval", 0.5)
    again = ["finetune", "--task", "push_button", "--from", str(tmp_path / "pre"), "--logdir", "ft", "--agent.lam"]
    result = run([*again, "0.9", "--run.steps", "5000"])  # --from spelled another way: the same folder
    assert result.exit_code == 0, result.output
    cfg = started.pop()
    assert cfg.agent.repval == 0.3 and cfg.agent.discount == 0.997 and cfg.run.steps == 5000
    assert "resume: keeping the run's saved agent.repval 0.3 (today's config gives 0.5)" in result.output
    refused = run([*again, "0.95"])
    assert refused.exit_code == 2 and "ft has agent.lam 0.9 saved and this command gives 0.95;" in one_error(refused)


def test_every_dotted_flag_shown_in_help_and_docs_is_a_real_config_key() -> None:
    """An example a user copies must run: every `--a.b` in the commands' --help and in the README, docs and prompt
    docs names a key of lamp/configs.yaml."""
    import re
    from pathlib import Path

    from lamp.config import _blocks, flat_keys

    root = Path(__file__).resolve().parents[1]
    known = set(flat_keys(_blocks()["defaults"]))
    texts = {str(p.relative_to(root)): p.read_text() for p in [root / "README.md", root / "prompts" / "README.md"]}
    texts.update({str(p.relative_to(root)): p.read_text() for p in sorted((root / "docs").glob("*.md"))})
    for command in ("pretrain", "finetune", "eval", "ablate", "score", "doctor"):
        texts[f"lamp {command} --help"] = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400"}).output
    flags = {(where, m) for where, text in texts.items() for m in re.findall(r"--([a-z_]+(?:\.[a-z_0-9]+)+)", text)}
    assert len(flags) > 20 and any(where.startswith("lamp ") for where, _ in flags)  # the scan sees examples
    assert sorted(f for f in flags if f[1] not in known) == []


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("agent.threads", "did you mean 'threads'?"),
        ("agent.steps", "'run.steps'"),
        ("agent.lr", "'agent.model_lr'"),
        ("run.stpes", "did you mean 'run.steps'?"),
        ("prompt.style", "did you mean 'prompts.style'?"),
        ("config", "did you mean --configs NAME ... (config blocks) or --config-file FILE"),
    ],
)
def test_an_unknown_key_suggests_the_key_meant(key: str, hint: str) -> None:
    from lamp.config import _blocks, flat_keys, suggest_key

    assert hint in suggest_key(key, flat_keys(_blocks()["defaults"]))
    result = CliRunner().invoke(
        app, ["pretrain", "--configs", "smoke", f"--{key}", "1", "--logdir", "x"], env={"COLUMNS": "400"}
    )
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and hint in errors[0], result.output
