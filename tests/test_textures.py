"""Texture bank helpers: procedural textures, folder banks and `lamp textures from-videos`."""

from __future__ import annotations

import numpy as np
import pytest

from envs import gl
from envs.textures import TextureBank, frames_from_videos, procedural_texture
from lamp.errors import UsageError


def test_procedural_textures_are_deterministic_and_distinct():
    a, b = procedural_texture(3, 16), procedural_texture(3, 16)
    assert a.shape == (16, 16, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert not np.array_equal(procedural_texture(4, 16), a)


def test_folder_bank_crops_and_resizes(tmp_path):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "wide.png", np.zeros((20, 60, 3), np.uint8))
    iio.imwrite(tmp_path / "grey.jpg", np.full((30, 30), 200, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    bank = TextureBank(tmp_path, size=24)
    assert bank.names() == ["grey.jpg", "wide.png"]
    assert all(bank.image(i).shape == (24, 24, 3) for i in range(2))


def test_frames_from_videos(tmp_path):
    import imageio.v3 as iio

    videos, out = tmp_path / "videos", tmp_path / "bank"
    videos.mkdir()
    frames = np.stack([np.full((48, 64, 3), 10 * i, np.uint8) for i in range(20)])
    iio.imwrite(videos / "clip.mp4", frames, fps=10, plugin="FFMPEG", macro_block_size=16)
    written = frames_from_videos(videos, out, every=5, size=32)
    assert [p.name for p in written] == [f"clip_{i:06d}.png" for i in (0, 5, 10, 15)]
    images = [iio.imread(p) for p in written]
    assert all(img.shape == (32, 32, 3) for img in images)
    assert images[3].mean() > images[0].mean() + 50  # later frames are brighter, so frames really differ
    assert len(TextureBank(out, size=16)) == 4  # the output is a valid texture folder
    assert not list(out.glob("*.tmp"))


def test_frames_from_videos_bad_input(tmp_path):
    with pytest.raises(UsageError, match="is not a folder"):
        frames_from_videos(tmp_path / "none", tmp_path / "out")
    with pytest.raises(UsageError, match="has no videos"):
        frames_from_videos(tmp_path, tmp_path / "out")
    with pytest.raises(UsageError, match="--every must be at least 1"):
        frames_from_videos(tmp_path, tmp_path / "out", every=0)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(UsageError, match=r"bad\.mp4"):
        frames_from_videos(tmp_path, tmp_path / "out")


def test_gl_backend_respects_mujoco_gl(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    monkeypatch.setattr(gl, "probe", lambda backend: pytest.fail("must not probe when MUJOCO_GL is set"))
    assert gl.select_backend() == "osmesa"


def test_gl_backend_error_names_apt_packages(monkeypatch):
    import sys

    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delitem(sys.modules, "mujoco", raising=False)
    monkeypatch.setattr(gl, "probe", lambda backend: False)
    with pytest.raises(UsageError, match=r"libegl1 libopengl0 libgl1-mesa-dri.*libosmesa6") as err:
        gl.select_backend()
    assert "\n" not in str(err.value)
    assert "libosmesa6" in str(gl.render_error("egl", RuntimeError("x")))


def test_gl_probe_finds_a_working_backend():
    assert gl.probe("egl") or gl.probe("osmesa")  # this machine has Mesa installed (see guide)


def test_cli_textures_from_videos(tmp_path, capsys):
    import imageio.v3 as iio

    from lamp.cli import main

    videos = tmp_path / "videos"
    videos.mkdir()
    iio.imwrite(videos / "a.mp4", np.zeros((6, 32, 32, 3), np.uint8), fps=5, plugin="FFMPEG", macro_block_size=16)
    with pytest.raises(SystemExit) as done:
        main(["textures", "from-videos", str(videos), str(tmp_path / "bank"), "--every", "3", "--size", "16"])
    assert done.value.code == 0
    assert "wrote 2 frames" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["textures", "from-videos", str(tmp_path / "none"), str(tmp_path / "bank")])
    assert done.value.code == 2
    assert capsys.readouterr().err.startswith("error: video folder")


def test_env_from_config_uses_the_config_sections():
    from lamp import config

    cfg = config.build_config(["metaworld"], flags=["--env.task", "push_button", "--textures.p_default", "0.5"])
    from envs.common import env_from_config

    name, options = env_from_config(cfg.env, cfg.textures)
    assert name == "metaworld/push_button"
    assert options["wrist"] is True and options["size"] == 64 and "workers" not in options
    assert options["textures"]["p_default"] == 0.5
    name, options = env_from_config({**cfg.env, "backend": "rlbench"}, cfg.textures, {"variation": 0})
    assert name == "rlbench/push_button" and "max_scenes" not in options and options["variation"] == 0
