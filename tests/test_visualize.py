"""The pictures a person opens: enlarged, labelled videos; the reward strip; the open-loop panes."""

from __future__ import annotations

import numpy as np
import pytest

from lamp.visualize import LABEL_HEIGHT, labelled, reward_strip_video, side_by_side, text_line


def test_labelled_enlarges_by_an_integer_factor_and_adds_label_lines() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 192, 3), dtype=np.uint8)
    out = labelled(frames, ["truth", "model", "error"], footer="a footer")
    assert out.shape == (3, LABEL_HEIGHT + 256 + LABEL_HEIGHT, 768, 3) and out.dtype == np.uint8
    body = out[:, LABEL_HEIGHT : LABEL_HEIGHT + 256]
    assert np.array_equal(body[:, ::4, ::4], frames)  # nearest neighbour: every 4x4 block is one source pixel
    assert np.array_equal(body[:, 3::4, 3::4], frames)
    header = out[0, :LABEL_HEIGHT]
    for pane in range(3):  # each pane's label is drawn inside its own 256 px column
        column = header[:, pane * 256 : (pane + 1) * 256]
        assert (column > 100).any() and (column[:, :2] == 24).all()
    assert np.array_equal(out[0, :LABEL_HEIGHT], out[2, :LABEL_HEIGHT])  # the label is the same on every frame


def test_labelled_keeps_large_frames_and_refuses_unequal_panes() -> None:
    frames = np.zeros((2, 300, 90, 3), np.uint8)
    assert labelled(frames, ["a"]).shape == (2, LABEL_HEIGHT + 300, 90, 3)  # already tall enough: not scaled
    with pytest.raises(ValueError, match="2 pane labels do not split a 89 px wide frame"):
        labelled(frames[:, :, :89], ["a", "b"])


def test_text_line_fits_its_width() -> None:
    short, long = text_line("ok", 200), text_line("x" * 500, 60)
    assert short.shape == (LABEL_HEIGHT, 200, 3) and long.shape == (LABEL_HEIGHT, 60, 3)
    assert (short[:, 40:] == 24).all()  # two letters end well before 40 px
    assert (long[:, -2:] == 24).all()  # the cut text leaves the right margin free


def test_reward_strip_marks_the_current_step_and_scales_the_curve() -> None:
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    out = reward_strip_video(frames, np.array([0.0, 1.0, 2.0, 3.0]))
    assert out.shape == (4, 32 + 16, 32, 3)
    strip = out[:, 32:]
    marker_columns = [np.flatnonzero((strip[t] == [255, 60, 60]).all(-1).any(0)) for t in range(4)]
    assert [int(c.mean()) for c in marker_columns] == sorted(int(c.mean()) for c in marker_columns)
    early, late = (strip[3] == [255, 200, 40]).all(-1), (strip[0] == [255, 200, 40]).all(-1)  # away from the marker
    assert np.flatnonzero(early[:, 1]).min() > np.flatnonzero(late[:, -3]).min()  # rising reward: the curve climbs
    with pytest.raises(ValueError, match="one reward per frame"):
        reward_strip_video(frames, np.zeros(3))


def test_side_by_side_error_pane() -> None:
    truth = np.full((2, 4, 4, 3), 200, np.uint8)
    prediction = np.full((2, 4, 4, 3), 50, np.uint8)
    out = side_by_side(truth, prediction)
    assert out.shape == (2, 4, 12, 3) and (out[..., 8:, :] == 150).all()


def test_top_frames_are_kept_per_object_class_however_many_prompts():
    from lamp.visualize import TopFrames

    top = TopFrames(k=3)
    rng = np.random.default_rng(0)
    for i in range(200):  # 200 different prompts over two classes
        frames = rng.integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)
        top.update(("mug", "drawer")[i % 2], frames, rng.normal(size=5), prompt=f"prompt {i}")
    assert sorted(top.best) == ["drawer", "mug"] and all(len(v) == 3 for v in top.best.values())
    rewards = [r for r, _, _ in top.best["mug"]]
    assert rewards == sorted(rewards, reverse=True)
    assert set(top.grids()) == {"mug", "drawer"}
