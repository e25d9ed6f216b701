"""Contract tests of the RLBench adapter (envs/rlbench.py).

Here they run against the stand-in in tests/fake_rlbench; inside the Docker image, where real PyRep/RLBench import,
`pytest -m rlbench` runs the same tests against CoppeliaSim (tests that need the stand-in's fault injection or its
internals are skipped there). Marked `rlbench` so that command selects them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import envs
from lamp.errors import UsageError

_spec = importlib.util.spec_from_file_location("rlbench_harness", Path(__file__).parent / "fake_rlbench" / "harness.py")
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)

pytestmark = pytest.mark.rlbench
TASKS = ("pick_up_cup", "take_lid_off_saucepan", "push_button", "close_microwave", "turn_tap")


class Stack:
    """What a test needs: whether it runs on the stand-in, and the stand-in's inspection hooks."""

    def __init__(self, fake: bool) -> None:
        self.fake = fake
        self.stub = importlib.import_module("rlbench._stub") if fake else None

    def require_fake(self) -> None:
        if not self.fake:
            pytest.skip("needs the stand-in's fault injection / internals")


@pytest.fixture(params=["lamp"])
def stack(request: pytest.FixtureRequest, tmp_path: Path):
    with harness.stack(request.param, tmp_root=tmp_path) as fake:
        s = Stack(fake)
        if fake:
            s.stub.clear()
        yield s


@pytest.fixture
def master_stack(tmp_path: Path):
    with harness.stack("master", tmp_root=tmp_path) as fake:
        s = Stack(fake)
        s.require_fake()
        s.stub.clear()
        yield s


@pytest.fixture
def texture_dir(tmp_path: Path) -> Path:
    from PIL import Image

    folder = tmp_path / "textures"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / f"tex{i}.png")
    return folder


def make(task: str, **options):
    return envs.make_env(f"rlbench/{task}", **options)


# --- construction, spaces, observations ------------------------------------------------------------------------------
def test_registry_names() -> None:
    names = set(envs.registered())
    assert {f"rlbench/{t}" for t in (*TASKS, "pretrain")} <= names


def test_import_without_stack_is_clean_and_make_says_what_to_install(tmp_path: Path) -> None:
    if harness.real_stack_available():
        pytest.skip("the real stack is installed here")
    for name in [m for m in sys.modules if m.split(".")[0] in ("rlbench", "pyrep")]:
        del sys.modules[name]
    import envs.rlbench as adapter  # importing never needs CoppeliaSim

    with pytest.raises(UsageError, match="Dockerfile"):
        adapter.make("push_button")


@pytest.mark.parametrize("wrist", [False, True])
def test_spaces_and_first_observation(stack: Stack, wrist: bool) -> None:
    env = make("push_button", size=32, wrist=wrist)
    try:
        obs, info = env.reset(seed=0)
        assert env.action_space.shape == (4,) and env.action_space.dtype == np.float32
        assert float(env.action_space.low.min()) == -1.0 and float(env.action_space.high.max()) == 1.0
        assert env.observation_space.contains(obs)
        assert set(obs) == ({"image", "wrist", "state"} if wrist else {"image", "state"})
        assert obs["image"].shape == (32, 32, 3) and obs["image"].dtype == np.uint8
        state = obs["state"]
        assert state.shape == (10,) and state.dtype == np.float32
        assert state[0] == 1.0  # gripper open at reset
        assert np.isclose(np.linalg.norm(state[4:8]), 1.0, atol=1e-4)  # tip quaternion
        assert np.all(state[8:10] >= 0)  # gripper joint positions
        assert info["task"] == "push_button" and info["noun"] == "button" and info["success"] is False
        assert isinstance(info["descriptions"], list) and all(isinstance(d, str) for d in info["descriptions"])
        assert info["failed_actions"] == 0 and info["task_reward"] == 0.0
        assert np.int64(np.prod(env._env.action_shape)) == 8 and len(env._env.action_shape) == 1
        if stack.fake:
            assert stack.stub.counters["headless"] == 1
    finally:
        env.close()


def test_cameras_render_at_the_scorers_size_and_the_agent_gets_them_downsampled(stack: Stack) -> None:
    from envs.common import area_downsample

    env = make("push_button", size=16, wrist=True, render_size=32, score_view=True)
    try:
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        assert obs["score_image"].shape == (32, 32, 3) and obs["image"].shape == obs["wrist"].shape == (16, 16, 3)
        np.testing.assert_array_equal(obs["image"], area_downsample(obs["score_image"], 16))
    finally:
        env.close()
    with pytest.raises(UsageError, match=r"scorer\.image_size 24 must be a whole multiple of env\.size 16"):
        make("push_button", size=16, render_size=24)


def test_observation_config_switches_everything_else_off(stack: Stack) -> None:
    from envs.rlbench import _import_rlbench, observation_config

    cfg = observation_config(_import_rlbench(), 48, wrist=True)
    for cam in ("left_shoulder_camera", "right_shoulder_camera", "overhead_camera"):
        c = getattr(cfg, cam)
        assert not (c.rgb or c.depth or c.point_cloud or c.mask)
    for cam in ("front_camera", "wrist_camera"):
        c = getattr(cfg, cam)
        assert c.rgb and not (c.depth or c.point_cloud or c.mask) and tuple(c.image_size) == (48, 48)
    assert cfg.gripper_open and cfg.gripper_pose and cfg.gripper_joint_positions
    assert not (cfg.joint_velocities or cfg.joint_positions or cfg.joint_forces or cfg.task_low_dim_state)


def test_stub_observation_has_only_requested_channels(stack: Stack) -> None:
    stack.require_fake()
    env = make("push_button", size=16)
    try:
        env.reset(seed=0)
        raw = env._task_env.get_observation()
        assert raw.front_rgb.shape == (16, 16, 3) and raw.wrist_rgb is None and raw.front_depth is None
        assert raw.left_shoulder_rgb is None and raw.joint_positions is None
        assert "left_shoulder_camera_extrinsics" not in raw.misc and "front_camera_extrinsics" in raw.misc
    finally:
        env.close()


def test_image_orientation_is_upright(stack: Stack) -> None:
    """PyRep flips CoppeliaSim's bottom-up buffer: row 0 is the top of the picture (walls), the last row the floor."""
    stack.require_fake()
    env = make("push_button", size=24)
    try:
        obs, _ = env.reset(seed=0)
        from rlbench.backend.scene import DEFAULT_COLORS

        assert tuple(obs["image"][0, 0]) == DEFAULT_COLORS["Wall"]
        assert tuple(obs["image"][-1, 0]) == DEFAULT_COLORS["Floor"]
    finally:
        env.close()


# --- actions ---------------------------------------------------------------------------------------------------------
def test_action_mapping_bit_for_bit(stack: Stack) -> None:
    stack.require_fake()
    env = make("push_button", size=16)
    try:
        env.reset(seed=0)
        env.step(np.array([1, 1, 1, 1], np.float32))  # at reset height: dz is clipped to 0
        np.testing.assert_array_equal(stack.stub.last_actions[-1], [0.03, 0.03, 0.0, 0, 0, 0, 1, 1.0])
        env.step(np.array([-1, -1, -1, -1], np.float32))
        np.testing.assert_allclose(stack.stub.last_actions[-1], [-0.03, -0.03, -0.03, 0, 0, 0, 1, 0.0])
        env.step(np.array([0, 0, -0.5, 0.2], np.float32))
        np.testing.assert_allclose(stack.stub.last_actions[-1], [0, 0, -0.015, 0, 0, 0, 1, 1.0])
        env.step(np.array([0, 0, 1, 0], np.float32))  # 4.5 cm below the reset height: a full 3 cm climb
        np.testing.assert_allclose(stack.stub.last_actions[-1], [0, 0, 0.03, 0, 0, 0, 1, 0.0])
        env.step(np.array([0, 0, 1, 0], np.float32))  # then only the 1.5 cm left up to the reset height
        np.testing.assert_allclose(stack.stub.last_actions[-1], [0, 0, 0.015, 0, 0, 0, 1, 0.0], atol=1e-9)
        env.step(np.array([0, 0, 1, 0], np.float32))  # never above it
        np.testing.assert_allclose(stack.stub.last_actions[-1], [0, 0, 0.0, 0, 0, 0, 1, 0.0], atol=1e-9)
        assert all(a.dtype == np.float64 and a.shape == (8,) for a in stack.stub.last_actions)
    finally:
        env.close()


def test_tip_never_rises_above_reset_height_and_orientation_is_fixed(stack: Stack) -> None:
    env = make("push_button", size=16)
    try:
        obs, _ = env.reset(seed=1)
        z0, quat0 = obs["state"][3], obs["state"][4:8].copy()
        rng = np.random.default_rng(0)
        for _ in range(12):
            obs, *_ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
            assert obs["state"][3] <= z0 + 1e-3
            assert abs(abs(float(np.dot(obs["state"][4:8], quat0))) - 1.0) < 1e-2
    finally:
        env.close()


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros(8), np.array([0, np.nan, 0, 0]), np.array([np.inf, 0, 0, 0])])
def test_bad_actions_are_errors_and_never_reach_rlbench(stack: Stack, bad: np.ndarray) -> None:
    env = make("push_button", size=16)
    try:
        env.reset(seed=0)
        sent = len(stack.stub.last_actions) if stack.fake else 0
        with pytest.raises(ValueError, match=r"shape|NaN"):
            env.step(bad)
        if stack.fake:
            assert len(stack.stub.last_actions) == sent
    finally:
        env.close()


def test_step_before_reset_is_an_error(stack: Stack) -> None:
    env = make("push_button", size=16)
    try:
        with pytest.raises(RuntimeError, match="reset"):
            env.step(np.zeros(4, np.float32))
    finally:
        env.close()


# --- failures: planning/IK errors, reset retries ---------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["InvalidActionError", "IKError", "ConfigurationPathError"])
def test_failed_action_keeps_previous_observation_and_reward(stack: Stack, fault: str) -> None:
    stack.require_fake()
    from pyrep import errors as pyrep_errors
    from rlbench.backend import exceptions as rl_errors

    exc = getattr(rl_errors, fault, None) or getattr(pyrep_errors, fault)
    env = make("pick_up_cup", size=16)
    try:
        env.reset(seed=0)
        obs1, r1, *_ = env.step(np.array([0.2, 0, -1, 1], np.float32))
        stack.stub.faults.append(("step", stack.stub.counters["step"], exc))
        obs2, r2, terminated, truncated, info = env.step(np.array([0, 0.5, -1, 1], np.float32))
        assert info["invalid_action"] is True and info["failed_actions"] == 1 and env.failed_actions_total == 1
        assert not terminated and not truncated and r2 == r1
        for key in obs1:
            np.testing.assert_array_equal(obs1[key], obs2[key])
        _, _, _, _, info = env.step(np.array([0, 0, -1, 1], np.float32))  # next step moves again
        assert info["invalid_action"] is False and info["failed_actions"] == 1
        env.reset()
        assert env.failed_actions == 0 and env.failed_actions_total == 1
    finally:
        env.close()


def test_planning_fault_is_chained_from_configuration_path_error(stack: Stack) -> None:
    stack.require_fake()
    from pyrep.errors import ConfigurationPathError
    from rlbench.backend.exceptions import InvalidActionError

    env = make("push_button", size=16)
    try:
        env.reset(seed=0)
        stack.stub.faults.append(("step", stack.stub.counters.get("step", 0), InvalidActionError))
        with pytest.raises(InvalidActionError) as err:
            env._task_env.step(np.array([0, 0, 0, 0, 0, 0, 1, 1.0]))
        assert isinstance(err.value.__cause__, ConfigurationPathError)
    finally:
        env.close()


def test_leaving_the_workspace_is_a_failed_action_not_a_crash(stack: Stack) -> None:
    stack.require_fake()
    env = make("push_button", size=16)
    try:
        env.reset(seed=0)
        infos = [env.step(np.array([1, 0, 0, 1], np.float32))[4] for _ in range(25)]  # +x until the boundary
        assert infos[0]["invalid_action"] is False and infos[-1]["invalid_action"] is True
        assert infos[-1]["failed_actions"] >= 1
    finally:
        env.close()


def test_reset_retries_then_a_clear_error(stack: Stack) -> None:
    stack.require_fake()
    from rlbench.backend.exceptions import TaskEnvironmentError

    from envs.rlbench import RLBenchResetError

    env = make("push_button", size=16, reset_retries=2)
    try:
        stack.stub.faults += [("reset", 0, TaskEnvironmentError), ("reset", 1, TaskEnvironmentError)]
        _, info = env.reset(seed=0)
        assert info["reset_attempts"] == 3 and env.reset_failures_total == 2
        n = stack.stub.counters["reset"]
        stack.stub.faults += [("reset", n + i, TaskEnvironmentError("could not place")) for i in range(3)]
        with pytest.raises(RLBenchResetError, match=r"push_button.*3 resets.*reset_retries=2.*could not place"):
            env.reset()
    finally:
        env.close()


# --- rewards, success, truncation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", TASKS)
def test_shaped_rewards_flow_through_unchanged(stack: Stack, task: str) -> None:
    env = make(task, size=16)
    try:
        assert env.shaped, "the LAMP fork gives all five tasks a reward()"
        env.reset(seed=0)
        for _ in range(3):
            _, reward, _, _, info = env.step(np.array([0, 0, -1, 1], np.float32))
            assert reward == info["task_reward"] and np.isfinite(reward)
            if stack.fake:
                assert reward == pytest.approx(env._task_env._task.reward())
        if task in ("pick_up_cup", "take_lid_off_saucepan"):
            assert 0.0 < reward <= 2.0
        if task == "push_button":
            assert reward <= 0.0
    finally:
        env.close()


def test_master_flavour_detects_missing_shaped_reward_and_keeps_world_frame(master_stack: Stack) -> None:
    with pytest.warns(UserWarning, match="no shaped reward"):
        env = make("push_button", size=16)
    try:
        assert not env.shaped
        obs0, _ = env.reset(seed=0)
        obs1, reward, *_ = env.step(np.array([0, 1, -1, 1], np.float32))
        assert reward in (0.0, 1.0)
        # world frame: +y action moves the tip +y and -z moves it down (an EE-frame delta would flip both here)
        assert obs1["state"][2] - obs0["state"][2] == pytest.approx(0.03)
        assert obs1["state"][3] - obs0["state"][3] == pytest.approx(-0.03)
    finally:
        env.close()
    env = make("take_lid_off_saucepan", size=16)  # master keeps a reward() for this one
    try:
        assert env.shaped
    finally:
        env.close()


def test_sparse_success_on_push_button_and_truncation(stack: Stack) -> None:
    stack.require_fake()
    env = make("push_button", size=16, reward="sparse", episode_length=60)
    try:
        obs, _ = env.reset(seed=3)
        button = env._task_env._task.scene.objects["push_button_target"]
        rewards, infos, truncated = [], [], False
        while not truncated:
            tip = obs["state"][1:4]
            delta = np.clip((button + np.array([0, 0, 0.01]) - tip) / 0.03, -1, 1)
            if np.linalg.norm(tip[:2] - button[:2]) > 0.01:
                delta[2] = 0.0
            obs, reward, terminated, truncated, info = env.step(np.array([*delta, 1], np.float32))
            assert terminated is False
            rewards.append(reward)
            infos.append(info)
        assert len(rewards) == 60 and set(rewards) <= {0.0, 1.0}
        assert any(i["success"] for i in infos) and infos[-1]["episode_success"]
        first = next(k for k, i in enumerate(infos) if i["success"])
        assert rewards[first] == 1.0 and all(r == 0.0 for r in rewards[:first])
    finally:
        env.close()


def test_truncated_at_episode_length(stack: Stack) -> None:
    env = make("close_microwave", size=16, episode_length=3)
    try:
        env.reset(seed=0)
        flags = [env.step(np.zeros(4, np.float32))[3] for _ in range(3)]
        assert flags == [False, False, True]
    finally:
        env.close()


# --- pretraining task and textures -----------------------------------------------------------------------------------
def test_pretrain_noun_comes_from_the_main_object(stack: Stack, texture_dir: Path) -> None:
    env = make("pretrain", size=16, objects=["mug", "jar"], num_objects=2, textures={"dir": str(texture_dir)})
    try:
        nouns = set()
        for seed in range(6):
            _, info = env.reset(seed=seed)
            nouns.add(info["noun"])
        assert nouns <= {"mug", "jar"} and nouns
        if stack.fake:
            assert env._task_env._task.num_objects == 2
    finally:
        env.close()


def _assert_episode_objects(env, objects: set[str], num_objects: int) -> None:
    meta = list(env._task_env._task.bin_objects_meta)
    assert len(meta) == num_objects and set(meta) <= objects, meta


def test_pretrain_objects_and_count_hold_from_the_first_episode(stack: Stack, texture_dir: Path) -> None:
    """RLBench runs init_task() at the first reset, and the fork's init_task() puts its default samplers (a mug; lamp,
    clock) and one object back: settings made right after get_task() would be silently lost."""
    objects = {"jar", "bowl"}
    env = make("pretrain", size=16, objects=sorted(objects), num_objects=3, textures={"dir": str(texture_dir)})
    try:
        if stack.fake:
            assert stack.stub.counters.get("init_task", 0) == 0  # as the real code: not yet at get_task()
        for seed in range(4):
            _, info = env.reset(seed=seed)
            _assert_episode_objects(env, objects, 3)
            assert info["noun"] in objects
        if stack.fake:
            assert stack.stub.counters["init_task"] == 1
    finally:
        env.close()


def test_pretrain_objects_are_applied_again_after_a_re_init_task(stack: Stack, texture_dir: Path) -> None:
    env = make("pretrain", size=16, objects=["jar"], num_objects=2, textures={"dir": str(texture_dir)})
    try:
        env.reset(seed=0)
        env._task_env._scene.init_task()  # what a reload of the task does: samplers and count back to the defaults
        _, info = env.reset(seed=1)
        _assert_episode_objects(env, {"jar"}, 2)
        assert info["noun"] == "jar"
    finally:
        env.close()


def test_pretrain_settings_the_task_does_not_keep_are_a_loud_error(stack: Stack, texture_dir: Path) -> None:
    stack.require_fake()
    from envs.rlbench import RLBenchPretrainError

    env = make("pretrain", size=16, objects=["jar"], num_objects=3, textures={"dir": str(texture_dir)})
    try:
        env._task_env._task.set_num_objects = lambda n: None  # a task that ignores the hook
        with pytest.raises(RLBenchPretrainError, match=r"rlbench.num_objects.*3") as err:
            env.reset(seed=0)
        assert "\n" not in str(err.value)
    finally:
        env.close()


def test_textures_reach_table_each_wall_and_floor(stack: Stack, texture_dir: Path) -> None:
    stack.require_fake()
    from pyrep.const import TextureMappingMode

    env = make("pretrain", size=24, textures={"dir": str(texture_dir), "p_default": 0.0})
    try:
        images, draws = [], []
        for seed in range(4):
            obs, info = env.reset(seed=seed)
            images.append(obs["image"])
            draws.append(env.last_draw.files)
            assert info["textures"] != "default"
        log = stack.stub.texture_log()
        names = {name.split("#")[0] for name, _, _ in log}
        assert {"Wall1", "Wall2", "Wall3", "Wall4", "Floor"} <= names
        assert any(n.startswith("diningTable") for n in names)  # the compound table is textured part by part
        scaling = {name.split("#")[0]: kw["uv_scaling"] for name, _, kw in log}
        assert scaling["Wall1"] == [5.0, 3.0] and scaling["Floor"] == [5.0, 5.0]
        assert all(kw["mapping_mode"] == TextureMappingMode.PLANE and not kw["repeat_along_u"] for *_, kw in log)
        assert all(Path(f).parent == texture_dir.resolve() for _, f, _ in log)
        # each wall is drawn independently: across 4 episodes the four walls do not always share a texture
        assert any(len({d[f"Wall{i}"] for i in range(1, 5)}) > 1 for d in draws)
        # what is drawn is what the camera sees: the top band (walls) changes between episodes
        assert any(not np.array_equal(images[0][:8], im[:8]) for im in images[1:])
        world = stack.stub.world()
        assert not any(r.name.startswith("Plane") and not r.removed for r in world.objects.values())
        originals = {r.name: r for r in world.objects.values() if not r.removed and "#" not in r.name}
        # the originals are hidden while their textured copies show (both rendering would z-fight), physics kept
        assert not any(originals[n].renderable for n in ("Wall1", "Wall2", "Wall3", "Wall4", "Floor"))
        assert all(originals[n].respondable for n in ("Wall1", "Floor"))
        copies = [r for r in world.objects.values() if not r.removed and r.name.startswith("Wall1#")]
        assert copies and all(r.renderable and not r.respondable for r in copies)
    finally:
        env.close()


def test_textured_copies_are_visual_only_and_the_floor_copy_is_lifted(stack: Stack, texture_dir: Path) -> None:
    """Copies never touch physics, also the table copy that is ungrouped and regrouped every episode (a regrouped
    compound is a new shape); the floor copy sits 1 cm above the floor, as LAMP's and upstream's randomisers do."""
    from pyrep.objects.shape import Shape

    env = make("pretrain", size=16, textures={"dir": str(texture_dir), "p_default": 0.0})
    try:
        for seed in range(3):
            env.reset(seed=seed)
            copies = env.scene_textures._copies
            assert set(copies) == {"diningTable_visible", "Wall1", "Wall2", "Wall3", "Wall4", "Floor"}
            for name, copy in copies.items():
                assert copy.is_renderable() and not copy.is_respondable() and not copy.is_collidable(), name
            floor, lifted = Shape("Floor").get_position(), copies["Floor"].get_position()
            np.testing.assert_allclose(lifted - floor, [0.0, 0.0, 0.01], atol=1e-6)
            table = Shape("diningTable_visible")
            assert table.is_respondable() and table.is_collidable() and not table.is_renderable()
    finally:
        env.close()


def test_default_look_probability(stack: Stack, texture_dir: Path) -> None:
    stack.require_fake()
    from rlbench.backend.scene import DEFAULT_COLORS

    env = make("pretrain", size=24, textures={"dir": str(texture_dir), "p_default": 1.0})
    try:
        for seed in range(3):
            obs, info = env.reset(seed=seed)
            assert info["textures"] == "default" and tuple(obs["image"][0, 0]) == DEFAULT_COLORS["Wall"]
    finally:
        env.close()
    env = make("pretrain", size=24, textures={"dir": str(texture_dir), "p_default": 0.5})
    try:
        kinds = [env.reset(seed=s)[1]["textures"] == "default" for s in range(40)]
        assert 5 <= sum(kinds) <= 35  # both outcomes happen at p=0.5
        # switching back to the default look shows the originals again
        env.scene_textures.apply(env._task_env._scene.pyrep, type(env.last_draw)(None))
        obs = env._observe(env._task_env.get_observation())
        assert tuple(obs["image"][0, 0]) == DEFAULT_COLORS["Wall"]
    finally:
        env.close()


def test_downstream_tasks_keep_default_look_unless_asked(stack: Stack, texture_dir: Path) -> None:
    env = make("push_button", size=16)
    try:
        assert env.scene_textures is None
    finally:
        env.close()
    options = {"dir": str(texture_dir), "randomize": "always", "p_default": 0.0}
    env = make("push_button", size=16, textures=options)
    try:
        env.reset(seed=0)
        assert env.last_draw.files is not None
    finally:
        env.close()


def test_same_seed_same_first_observation_and_textures(stack: Stack, texture_dir: Path) -> None:
    def first(seed: int):
        env = make("pretrain", size=24, textures={"dir": str(texture_dir)})
        try:
            obs, info = env.reset(seed=seed)
            return obs, info["textures"], info["noun"]
        finally:
            env.close()

    a, b, c = first(7), first(7), first(8)
    for key in a[0]:
        np.testing.assert_array_equal(a[0][key], b[0][key])
    assert a[1:] == b[1:]
    if stack.fake:  # object placement (global np.random) and textures (our generator) both follow the seed
        assert not np.array_equal(a[0]["image"], c[0]["image"])


def test_accepts_the_shared_env_section(stack: Stack) -> None:
    """Every key of the `env:` config section is accepted; the Meta-World-only ones are ignored."""
    options = {"size": 16, "camera": "front", "wrist": True, "episode_length": 5, "action_scale": 0.03}
    env = make("turn_tap", **options, reward="shaped", pool="disjoint", decimate=None)
    try:
        obs, info = env.reset(seed=0)
        assert obs["wrist"].shape == (16, 16, 3) and info["noun"] == "tap"
    finally:
        env.close()


def test_default_texture_bank_is_written_once_as_pngs(stack: Stack, tmp_path: Path, monkeypatch) -> None:
    from PIL import Image

    from envs.rlbench_textures import default_texture_dir

    monkeypatch.setenv("LAMP_CACHE", str(tmp_path / "cache"))
    folder = default_texture_dir(size=32)
    files = sorted(folder.glob("*.png"))
    assert folder == tmp_path / "cache" / "textures" / "default" and len(files) >= 5
    with Image.open(files[0]) as im:
        assert im.size == (32, 32) and im.mode == "RGB"
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert default_texture_dir(size=32) == folder and [f.stat().st_mtime_ns for f in files] == mtimes
    assert not list(folder.glob(".*.tmp"))
    env = make("pretrain", size=16)  # no textures.dir: uses that bank
    try:
        assert env.scene_textures.files and all(Path(f).parent == folder for f in env.scene_textures.files)
    finally:
        env.close()


# --- bad input and lifecycle -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"textures": {"p_default": 1.5}}, r"textures.p_default must be within \[0, 1\]"),
        ({"reward": "dense"}, "env.reward 'dense'"),
        ({"size": 4}, "env.size 4"),
        ({"episode_length": 0}, "episode_length"),
        ({"reset_retries": -1}, "reset_retries"),
        ({"camera": "topview"}, "env.camera 'topview' is not available with RLBench"),
        ({"textures": {"randomize": "sometimes"}}, "textures.randomize 'sometimes'"),
    ],
)
def test_bad_options_are_one_line_usage_errors(options: dict, match: str) -> None:
    with pytest.raises(UsageError, match=match) as err:
        make("push_button", **options)
    assert "\n" not in str(err.value)


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(UsageError, match=r"Valid names:.*rlbench/push_button"):
        envs.make_env("rlbench/push_buton")


def test_missing_texture_dir_is_a_usage_error(stack: Stack, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a folder"):
        make("pretrain", size=16, textures={"dir": str(tmp_path / "nope")})


def test_pretrain_needs_the_lamp_fork(master_stack: Stack) -> None:
    with pytest.raises(UsageError, match=r"pick_shapenet_objects.*LAMP fork"):
        make("pretrain", size=16)


def test_pretrain_task_without_the_object_hooks_is_refused(stack: Stack) -> None:
    with pytest.raises(UsageError, match=r"rlbench.pretrain_task 'reach_target' has no reset_samplers / set_num_obj"):
        make("pretrain", size=16, pretrain_task="reach_target")


def test_close_shuts_down_once_and_one_simulator_per_process(stack: Stack) -> None:
    stack.require_fake()
    env = make("push_button", size=16)
    with pytest.raises(RuntimeError, match="one simulator per process"):
        make("turn_tap", size=16)
    env.close()
    env.close()
    assert stack.stub.counters["shutdown"] == 1
    env2 = make("turn_tap", size=16)  # after close, a new simulator may start in this process
    env2.close()
    assert stack.stub.counters["shutdown"] == 2


def test_failed_construction_shuts_the_simulator_down(stack: Stack) -> None:
    stack.require_fake()
    env = None
    with pytest.raises(Exception, match="variation"):
        env = make("turn_tap", size=16, variation=5)  # turn_tap has 2 variations: TaskEnvironmentError
    assert env is None and stack.stub.counters["shutdown"] == 1
    make("turn_tap", size=16).close()  # and the process can start a new one
