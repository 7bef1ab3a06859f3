"""The humanoid:h1-* tasks: contract, determinism, and reward terms that respond the right way."""

import numpy as np
import pytest

from smiling.envs import UnknownTaskError, list_tasks, make_env, validate_task_id
from smiling.envs.h1_model import JOINTS, STAND_QPOS
from smiling.envs.humanoid import CRAWL_QUAT, TASKS, pole_positions

TASK_IDS = [f"humanoid:{name}" for name in TASKS]


def _pose(x=0.0, y=0.0, z=0.98, quat=(1, 0, 0, 0), joints=None):
    q = STAND_QPOS.copy()
    q[:3] = x, y, z
    q[3:7] = np.asarray(quat, dtype=float) / np.linalg.norm(quat)
    for name, value in (joints or {}).items():
        q[7 + JOINTS.index(name)] = value
    return q


@pytest.mark.parametrize("task", TASK_IDS)
def test_contract_dims_reward_range_and_horizon(task):
    env = make_env(task)
    assert env.observation_space.shape == (51,) and env.action_space.shape == (19,)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (51,) and obs.dtype == np.float32
    rng = np.random.default_rng(0)
    rewards, steps, truncated = [], 0, False
    while not truncated:
        obs, r, terminated, truncated, info = env.step(rng.uniform(-1, 1, 19))
        assert not terminated and np.all(np.isfinite(obs))
        rewards.append(r)
        steps += 1
    assert steps == 1000
    assert 0.0 <= min(rewards) and max(rewards) <= 1.0


def test_joint_and_actuator_order_match_the_documented_qpos_layout():
    env = make_env("humanoid:h1-walk")
    m = env.model
    assert [m.joint(i).name for i in range(1, m.njnt)] == list(JOINTS)
    assert [m.actuator(i).name for i in range(m.nu)] == list(JOINTS)
    assert [int(m.jnt_qposadr[i]) for i in range(1, m.njnt)] == list(range(7, 26))
    assert m.body_subtreemass[m.body("pelvis").id] == pytest.approx(51.437, abs=1e-3)   # Menagerie H1 masses


def test_keep_termination_ends_a_fallen_walk_early():
    env = make_env("humanoid:h1-walk", keep_termination=True)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for t in range(1000):
        *_, terminated, truncated, info = env.step(rng.uniform(-1, 1, 19))
        if terminated or truncated:
            break
    assert terminated and t < 999 and env.data.qpos[2] < 0.2


def test_same_seed_same_episode_and_different_seed_differs():
    a, b = make_env("humanoid:h1-crawl"), make_env("humanoid:h1-crawl")
    oa, _ = a.reset(seed=3)
    ob, _ = b.reset(seed=3)
    np.testing.assert_array_equal(oa, ob)
    rng = np.random.default_rng(1)
    for _ in range(50):
        act = rng.uniform(-1, 1, 19)
        oa, ra, *_ = a.step(act)
        ob, rb, *_ = b.step(act)
    np.testing.assert_array_equal(oa, ob)
    assert ra == rb
    oc, _ = a.reset(seed=4)
    assert not np.array_equal(oc, make_env("humanoid:h1-crawl").reset(seed=3)[0])


def test_servos_track_the_standing_keyframe_under_gravity():
    # Stiff but not rigid servos: holding the keyframe, the joints sag a little under the robot's weight and
    # the robot stays up for a while; balancing for longer is what the policy has to learn.
    env = make_env("humanoid:h1-walk")
    env.reset(seed=0)
    hold = env.stand_action()
    assert hold.shape == (19,) and np.all(np.abs(hold) <= 1)
    for _ in range(25):                                     # 0.5 s
        env.step(hold)
    assert np.abs(env.data.qpos[7:] - STAND_QPOS[7:]).max() < 0.2
    assert env.view.head_height() > 1.6 and env.view.torso_upright() > 0.95
    env.reset(seed=0)
    for _ in range(25):                                     # a = 0 asks for mid-range targets: a different pose
        env.step(np.zeros(19, np.float32))
    assert np.abs(env.data.qpos[7:] - STAND_QPOS[7:]).max() > 0.5


def test_walk_standing_scores_higher_than_fallen_and_moving_forward_higher_still():
    env = make_env("humanoid:h1-walk")
    env.reset(seed=0)
    env.set_state(_pose())
    standing = env.reward_terms()
    env.set_state(_pose(z=0.15, quat=(np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0)))   # lying face-down
    fallen = env.reward_terms()
    assert standing["standing"] == 1.0 and fallen["standing"] < 0.01
    assert standing["reward"] > 10 * fallen["reward"]
    qvel = np.zeros(env.model.nv)
    qvel[0] = 1.0                                           # the whole robot moving forward at 1 m/s
    env.set_state(_pose(), qvel)
    assert env.reward_terms()["move"] == pytest.approx(1.0)
    assert env.reward_terms()["reward"] > 5 * standing["reward"]


def test_crawl_scores_a_pose_under_the_tunnel_and_nothing_outside_it():
    env = make_env("humanoid:h1-crawl")
    env.reset(seed=0)
    env.set_state(_pose())
    standing = env.reward_terms()
    env.set_state(_pose(x=5.0, z=0.7, quat=CRAWL_QUAT))     # face-down crawl pose inside the tunnel
    crawling = env.reward_terms()
    assert crawling["in_tunnel"] == 1.0 and crawling["orientation"] > 0.99
    assert crawling["crawling"] == 1.0 and crawling["crawling_head"] > 0.9
    assert env.view.head_height() < 1.15                    # below the tunnel ceiling
    assert crawling["reward"] > standing["reward"] + 0.2
    env.set_state(_pose(x=5.0, y=1.5, z=0.7, quat=CRAWL_QUAT))   # beside the tunnel axis: out of bounds
    assert env.reward_terms()["reward"] == 0.0


def test_touching_a_pole_cuts_the_pole_reward_tenfold():
    env = make_env("humanoid:h1-pole")
    env.reset(seed=0)
    assert len(env.pole_geoms) == len(pole_positions()) == 144
    env.set_state(_pose())
    free = env.reward_terms()
    x, y = pole_positions()[2]                              # a pole of the first row, at y = 0.75
    env.set_state(_pose(x=x, y=y - 0.1))                    # torso box overlapping that pole
    assert env.touching(env.pole_geoms)
    touching = env.reward_terms()
    assert free["collision"] == 1.0 and touching["collision"] == 0.1
    assert touching["reward"] == pytest.approx(0.1 * free["reward"], rel=1e-6)


def test_sitting_on_the_chair_scores_higher_than_standing():
    env = make_env("humanoid:h1-sit_simple")
    env.reset(seed=0)
    env.set_state(_pose())
    standing = env.reward_terms()
    seated = {f"{s}_{j}": v for s in ("left", "right") for j, v in
              (("hip_pitch", -1.57), ("knee", 1.57), ("ankle", 0.0))}
    env.set_state(_pose(x=-0.25, z=0.70, joints=seated))
    sitting = env.reward_terms()
    assert sitting["sitting"] == 1.0 and sitting["on_chair"] == 1.0
    assert sitting["reward"] > standing["reward"] + 0.3


def test_task_ids_are_listed_and_unknown_ones_fail_clearly():
    tasks = list_tasks()
    for t in TASK_IDS:
        assert t in tasks and validate_task_id(t) == t
    with pytest.raises(UnknownTaskError, match="humanoid:h1-fly.*smiling tasks"):
        make_env("humanoid:h1-fly")
    with pytest.raises(UnknownTaskError, match="smiling tasks"):
        validate_task_id("humanoid:h1-fly")
