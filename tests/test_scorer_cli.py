"""`lamp score`: video / frame folder / .npz episode -> rewards.csv + rewards.png; bad input -> one line, exit 2."""

from __future__ import annotations

import csv
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from lamp.cli import _split_configs, app
from lamp.scorers.tiny import random_r3m, save_official, write_vocab

PROMPTS = ["pick up the red block", "open the drawer"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("score_cli")
    ckpt = save_official(random_r3m("resnet18", hidden_dim=32, seed=1), root / "model.pt")
    vocab = write_vocab(root / "tok")
    rng = np.random.default_rng(0)
    # a square moving right across a textured background: frames genuinely differ
    frames = np.repeat(rng.integers(0, 60, (1, 48, 48, 3), dtype=np.uint8), 6, axis=0)
    for t in range(6):
        frames[t, 16:32, 4 + 6 * t : 20 + 6 * t] = (220, 30, 30)
    folder = root / "frames"
    folder.mkdir()
    for t, f in enumerate(frames):
        iio.imwrite(folder / f"frame_{t}.png", f)
    np.savez(root / "episode.npz", image=frames, reward=np.zeros(6, np.float32))
    iio.imwrite(root / "clip.mp4", frames, fps=5, codec="libx264", macro_block_size=16)
    return {"root": root, "ckpt": ckpt, "vocab": vocab, "frames": frames, "folder": folder}


def run(assets: dict, source: Path | str, out: Path, *extra: str):
    args = ["score", str(source), "--out", str(out), *extra, "--scorer.model", "resnet18"]
    args += ["--scorer.checkpoint", str(assets["ckpt"]), "--scorer.tokenizer", str(assets["vocab"])]
    if "--scorer.image_size" not in extra:
        args += ["--scorer.image_size", "48"]  # the test frames' size (training scores 128 px)
    return CliRunner().invoke(app, _split_configs(args), env={"COLUMNS": "250"})


def read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=np.float64)


def test_frame_folder_writes_csv_and_png(assets: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(assets, assets["folder"], out, "--prompt", PROMPTS[0], "--prompt", PROMPTS[1])
    assert result.exit_code == 0, result.output
    header, table = read_csv(out / "rewards.csv")
    assert header == ["frame", *PROMPTS]
    assert table.shape == (6, 3) and list(table[:, 0]) == list(range(6))
    assert np.ptp(table[:, 1]) > 0  # the frames change, so must the reward
    png = iio.imread(out / "rewards.png")
    assert png.ndim == 3 and png.shape[0] > 100 and png.std() > 0
    assert "wrote" in result.output


def test_video_and_npz_give_the_same_kind_of_output(assets: dict, tmp_path: Path) -> None:
    npz = run(assets, assets["root"] / "episode.npz", tmp_path / "npz", "-p", PROMPTS[0])
    assert npz.exit_code == 0, npz.output
    folder = run(assets, assets["folder"], tmp_path / "dir", "-p", PROMPTS[0])
    # lossless inputs of the same frames score identically
    np.testing.assert_allclose(
        read_csv(tmp_path / "npz" / "rewards.csv")[1], read_csv(tmp_path / "dir" / "rewards.csv")[1]
    )
    assert folder.exit_code == 0
    video = run(assets, assets["root"] / "clip.mp4", tmp_path / "mp4", "-p", PROMPTS[0])
    assert video.exit_code == 0, video.output
    assert read_csv(tmp_path / "mp4" / "rewards.csv")[1].shape == (6, 2)


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (lambda root: root / "missing.mp4", "does not exist"),
        (lambda root: (root / "broken.mp4").write_bytes(b"\x00garbage" * 100) and root / "broken.mp4", "cannot decode"),
        (lambda root: (root / "notes.txt").write_text("hi") and root / "notes.txt", "is not a video"),
        (lambda root: np.savez(root / "f.npz", image=np.zeros((3, 8, 8, 3), np.float32)) or root / "f.npz", "float32"),
        (lambda root: np.savez(root / "g.npz", state=np.zeros(3)) or root / "g.npz", "--key NAME, one of: state"),
        (lambda root: (root / "empty").mkdir() or root / "empty", "has no image files"),
    ],
    ids=["missing", "corrupt-video", "not-video", "float-pixels", "no-image-key", "empty-folder"],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(assets: dict, tmp_path: Path, make_source, message) -> None:
    source = make_source(tmp_path)
    out = tmp_path / "out"
    result = run(assets, source, out, "--prompt", PROMPTS[0])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not out.exists()


def test_bad_scorer_config_is_one_line(assets: dict, tmp_path: Path) -> None:
    result = run(assets, assets["folder"], tmp_path / "o", "-p", "x", "--scorer.pooling", "cls")
    assert result.exit_code == 2 and "error: scorer.pooling must be one of" in result.output
    assert not (tmp_path / "o").exists()


def test_a_replay_chunk_gives_its_first_whole_episode(tmp_path) -> None:
    from lamp.scorers.score_tool import load_frames

    frames = np.arange(10, dtype=np.uint8)[:, None, None, None].repeat(4, 1).repeat(4, 2).repeat(3, 3)
    is_first = np.zeros(10, bool)
    is_first[[3, 7]] = True  # the chunk starts mid-episode; episodes begin at 3 and 7
    np.savez(tmp_path / "chunk_00000000.npz", image=frames, is_first=is_first)
    out = load_frames(tmp_path / "chunk_00000000.npz")
    assert out[:, 0, 0, 0].tolist() == [3, 4, 5, 6]  # frame 0 is the episode's initial frame
    plain = tmp_path / "episode.npz"
    np.savez(plain, image=frames)
    assert len(load_frames(plain)) == 10


def test_a_composite_or_a_view_of_another_size_is_refused(assets: dict, tmp_path: Path) -> None:
    """lamp's training videos are composites (a reward strip under the frames, panes side by side): scoring them
    would score pictures of something else, so `lamp score` wants one camera view at the size training scores."""
    strip = np.concatenate([assets["frames"], np.zeros((6, 24, 48, 3), np.uint8)], axis=1)  # 72 x 48
    np.savez(tmp_path / "composite.npz", image=strip)
    result = run(assets, tmp_path / "composite.npz", tmp_path / "o", "-p", PROMPTS[0])
    assert result.exit_code == 2 and "frames are 48x72, not one square camera view" in result.output
    assert not (tmp_path / "o").exists()
    result = run(assets, assets["folder"], tmp_path / "o", "-p", PROMPTS[0], "--scorer.image_size", "128")
    assert result.exit_code == 2 and "frames are 48x48 but training scores 128x128 frames" in result.output
    assert "--scorer.image_size 48" in result.output and not (tmp_path / "o").exists()


def test_the_tiny_scorer_warns_that_its_rewards_mean_nothing(tmp_path: Path, assets: dict) -> None:
    args = ["score", str(assets["folder"]), "--out", str(tmp_path / "o"), "-p", PROMPTS[0]]
    result = CliRunner().invoke(
        app, _split_configs([*args, "--scorer.kind", "tiny", "--scorer.image_size", "48"]), env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    assert "WARNING: PLUMBING CHECK: the scorer is a randomly initialised tiny model" in result.output
