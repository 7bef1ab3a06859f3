"""Whole-body Unitree H1 tasks in the style of HumanoidBench: ``humanoid:h1-walk``, ``-sit_simple``, ``-crawl``, ``-pole``.

Our own implementation on raw MuJoCo (see `smiling.envs.h1_model` for the robot); every margin and bound is
listed in docs/humanoids.md together with where these tasks differ from HumanoidBench. Shared setting:

* control at 50 Hz (10 physics steps of 2 ms per action), 19 position servos; action ``a`` in [-1, 1] is mapped
  affinely onto each joint's range, so ``a = 0`` asks for the middle of every range, not the standing pose;
* observation (51): ``qpos`` (26: pelvis x, y, z, pelvis quaternion w, x, y, z, 19 joint angles) then ``qvel``
  (25: pelvis linear velocity in the world frame, angular velocity in the pelvis frame, 19 joint velocities);
* reset: the standing keyframe plus uniform noise in [-0.01, 0.01] on every ``qpos`` entry, zero velocity;
* reward in [0, 1] per step, built from dm_control-style ``tolerance`` terms (Gaussian unless named otherwise);
* a backend termination (pelvis below a task height) is reported, and ends the episode only with
  ``keep_termination=True`` (fixed 1000-step episodes otherwise, the paper's setting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import mujoco
import numpy as np
from dm_control.utils.rewards import tolerance

from smiling.envs.base import TaskEnv, gl_backend_error
from smiling.envs.h1_model import FRAME_SKIP, STAND_QPOS, scene_xml

STAND_HEIGHT = 1.65     # head height (m) that counts as standing
WALK_SPEED = 1.0        # m/s, walk and crawl
POLE_SPEED = 0.5        # m/s, pole
CHAIR_X = -0.25         # chair centre; the robot starts at x = 0 facing +x, the chair behind it
TUNNEL_START, TUNNEL_LENGTH, TUNNEL_HALF_WIDTH, TUNNEL_CEILING = 2.2, 16.0, 1.15, 1.15
CRAWL_QUAT = np.array([0.75, 0.0, 0.65, 0.0])   # pelvis orientation target on crawl (body pitched face-down)


class H1View:
    """Read-only quantities of an H1 `mujoco.MjData` that the rewards use."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData):
        self.model, self.data = model, data
        self._head = model.site("head").id
        self._imu = model.site("imu").id
        self._torso = model.body("torso_link").id
        self._pelvis = model.body("pelvis").id
        self._com_vel = model.sensor("com_vel").adr[0]

    def head_height(self) -> float:
        return float(self.data.site_xpos[self._head, 2])

    def imu(self) -> np.ndarray:
        return self.data.site_xpos[self._imu]

    def torso_upright(self) -> float:
        """z component of the torso's z axis: 1 upright, 0 horizontal, -1 upside down."""
        return float(self.data.xmat[self._torso, 8])

    def com_velocity(self) -> np.ndarray:
        """Linear velocity (world frame) of the whole robot's centre of mass."""
        return self.data.sensordata[self._com_vel:self._com_vel + 3]

    def pelvis_quat(self) -> np.ndarray:
        return self.data.xquat[self._pelvis]

    def actuator_force(self) -> np.ndarray:
        return self.data.actuator_force


# --- reward terms -------------------------------------------------------------------------------------------
def small_control(v: H1View) -> float:
    """(4 + mean_i quad_tol(f_i; margin 10 N)) / 5, in [0.8, 1]: a mild preference for small servo forces."""
    per = tolerance(v.actuator_force(), margin=10.0, value_at_margin=0.0, sigmoid="quadratic")
    return float((4.0 + np.mean(per)) / 5.0)


def standing(v: H1View) -> float:
    return float(tolerance(v.head_height(), bounds=(STAND_HEIGHT, float("inf")), margin=STAND_HEIGHT / 4))


def upright(v: H1View, bound: float = 0.9, margin: float = 1.9) -> float:
    return float(tolerance(v.torso_upright(), bounds=(bound, float("inf")), sigmoid="linear", margin=margin,
                           value_at_margin=0.0))


def move(v: H1View, speed: float) -> float:
    """(5 m + 1) / 6 with m = clip(vx / speed, 0, 1): in [1/6, 1], 1 at or above ``speed`` forward."""
    m = tolerance(float(v.com_velocity()[0]), bounds=(speed, float("inf")), margin=speed, value_at_margin=0.0,
                  sigmoid="linear")
    return float((5.0 * m + 1.0) / 6.0)


def dont_move(v: H1View) -> float:
    return float(np.mean(tolerance(v.com_velocity()[:2], margin=2.0)))


def walk_reward(v: H1View, env: "HumanoidEnv") -> dict[str, float]:
    t = {"small_control": small_control(v), "standing": standing(v), "upright": upright(v),
         "move": move(v, WALK_SPEED)}
    t["reward"] = t["small_control"] * t["standing"] * t["upright"] * t["move"]
    return t


def sit_reward(v: H1View, env: "HumanoidEnv") -> dict[str, float]:
    qpos = v.data.qpos
    t = {"small_control": small_control(v),
         "sitting": float(tolerance(qpos[2], bounds=(0.68, 0.72), margin=0.2)),
         "on_chair": float(tolerance(qpos[0] - CHAIR_X, bounds=(-0.19, 0.19), margin=0.2)
                           * tolerance(qpos[1], bounds=(0.0, 0.0), margin=0.1)),
         "posture": float(tolerance(v.head_height() - v.imu()[2], bounds=(0.35, 0.45), margin=0.3)),
         "upright": upright(v, bound=0.95, margin=0.9),
         "dont_move": dont_move(v)}
    t["reward"] = (t["small_control"] * (0.5 * t["sitting"] + 0.5 * t["on_chair"]) * t["upright"] * t["posture"]
                   * t["dont_move"])
    return t


def crawl_reward(v: H1View, env: "HumanoidEnv") -> dict[str, float]:
    t = {"small_control": small_control(v),
         "crawling": float(tolerance(v.imu()[2], bounds=(0.6, 1.0), margin=1.0)),
         "crawling_head": float(tolerance(v.head_height(), bounds=(0.6, 1.0), margin=1.0)),
         "move": move(v, WALK_SPEED),
         "orientation": float(tolerance(np.linalg.norm(v.pelvis_quat() - CRAWL_QUAT), margin=1.0)),
         "in_tunnel": float(tolerance(v.imu()[1], bounds=(-1.0, 1.0)))}
    t["reward"] = (0.1 * t["small_control"] + 0.25 * min(t["crawling"], t["crawling_head"]) + 0.4 * t["move"]
                   + 0.25 * t["orientation"]) * t["in_tunnel"]
    return t


def pole_reward(v: H1View, env: "HumanoidEnv") -> dict[str, float]:
    t = {"small_control": small_control(v), "standing": standing(v), "upright": upright(v),
         "move": move(v, POLE_SPEED), "collision": 0.1 if env.touching(env.pole_geoms) else 1.0}
    t["reward"] = (0.5 * t["small_control"] * t["standing"] * t["upright"] + 0.5 * t["move"]) * t["collision"]
    return t


# --- scenes ----------------------------------------------------------------------------------------------
def _box(name: str, centre, half, rgba="0.55 0.5 0.45 1") -> str:
    return (f'    <geom name="{name}" type="box" pos="{" ".join(map(str, centre))}" '
            f'size="{" ".join(map(str, half))}" rgba="{rgba}"/>')


def chair_geoms() -> str:
    return "\n".join([_box("chair_seat", (CHAIR_X, 0, 0.2375), (0.21, 0.21, 0.2375)),
                      _box("chair_back", (CHAIR_X - 0.23, 0, 0.65), (0.02, 0.21, 0.2))])


def tunnel_geoms() -> str:
    cx, hx = TUNNEL_START + TUNNEL_LENGTH / 2, TUNNEL_LENGTH / 2
    wall_y = TUNNEL_HALF_WIDTH + 0.2
    return "\n".join([_box("tunnel_left", (cx, -wall_y, 0.775), (hx, 0.2, 0.775)),
                      _box("tunnel_right", (cx, wall_y, 0.775), (hx, 0.2, 0.775)),
                      _box("tunnel_ceiling", (cx, 0, TUNNEL_CEILING + 0.2), (hx, TUNNEL_HALF_WIDTH, 0.2))])


def pole_positions() -> list[tuple[float, float]]:
    """41 rows 1 m apart (x = 1..41): odd rows 4 poles at y = +-0.75, +-2.25; even rows 3 at y = 0, +-1.5."""
    out = []
    for row in range(1, 42):
        ys = (-2.25, -0.75, 0.75, 2.25) if row % 2 else (-1.5, 0.0, 1.5)
        out += [(float(row), y) for y in ys]
    return out


def pole_geoms() -> str:
    poles = [f'    <geom name="pole_{i}" type="cylinder" size="0.05 1" pos="{x} {y} 1" rgba="0.8 0.5 0.2 1"/>'
             for i, (x, y) in enumerate(pole_positions())]
    walls = [_box("wall_left", (20, -3.15, 1), (20.75, 0.15, 1)), _box("wall_right", (20, 3.15, 1), (20.75, 0.15, 1)),
             _box("wall_back", (-0.6, 0, 1), (0.15, 3, 1))]
    return "\n".join(poles + walls)


@dataclass(frozen=True)
class H1Task:
    reward: Callable[[H1View, "HumanoidEnv"], dict[str, float]]
    world: Callable[[], str] = lambda: ""
    min_pelvis_height: float | None = None     # backend termination below this pelvis height (None: never)


TASKS = {
    "h1-walk": H1Task(walk_reward, min_pelvis_height=0.2),
    "h1-sit_simple": H1Task(sit_reward, chair_geoms, min_pelvis_height=0.5),
    "h1-crawl": H1Task(crawl_reward, tunnel_geoms),
    "h1-pole": H1Task(pole_reward, pole_geoms, min_pelvis_height=0.5),
}


def humanoid_task_names() -> list[str]:
    return list(TASKS)


class HumanoidEnv(TaskEnv):
    """One ``humanoid:`` task (see the module docstring for the shared contract)."""

    def __init__(self, name: str, horizon: int = 1000, keep_termination: bool = False,
                 render_size: tuple[int, int] = (240, 320)):
        if name not in TASKS:
            raise KeyError(name)
        self._task = TASKS[name]
        self.model = mujoco.MjModel.from_xml_string(scene_xml(self._task.world()))
        self.data = mujoco.MjData(self.model)
        self.view = H1View(self.model, self.data)
        nq, nv = self.model.nq, self.model.nv
        self.obs_keys = [("qpos", 0, nq), ("qvel", nq, nq + nv)]
        self._low = self.model.actuator_ctrlrange[:, 0].astype(np.float64)
        self._high = self.model.actuator_ctrlrange[:, 1].astype(np.float64)
        self.pole_geoms = np.array([g for g in range(self.model.ngeom)
                                    if (self.model.geom(g).name or "").startswith("pole_")], dtype=np.int64)
        self._rng = np.random.default_rng()
        self._renderer = None
        self.last_terms: dict[str, float] = {}
        super().__init__(f"humanoid:{name}", nq + nv, self.model.nu, horizon, keep_termination, render_size)

    # --- state access (also used by tests and demos) ------------------------------------------------------
    def observation(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel])

    def set_state(self, qpos, qvel=None) -> None:
        """Put the robot in ``qpos``/``qvel`` and recompute positions, contacts and sensors (no time passes)."""
        self.data.qpos[:] = qpos
        self.data.qvel[:] = 0.0 if qvel is None else qvel
        mujoco.mj_forward(self.model, self.data)

    def stand_action(self) -> np.ndarray:
        """The action whose servo targets are the standing keyframe's joint angles (actions map affinely onto
        each actuator's control range). Holding it is a reference policy, not a controller: the robot has no
        balance feedback and falls within a few seconds (benchmarks/humanoid_reference.py)."""
        return (2.0 * (STAND_QPOS[7:] - self._low) / (self._high - self._low) - 1.0).astype(np.float32)

    def reward_terms(self) -> dict[str, float]:
        """The task's reward and each of its terms at the current state."""
        return self._task.reward(self.view, self)

    def touching(self, geoms: np.ndarray) -> bool:
        """Whether any active contact involves one of ``geoms`` (robot geoms only touch the world)."""
        n = self.data.ncon
        if n == 0 or geoms.size == 0:
            return False
        c = self.data.contact
        return bool(np.isin(c.geom1[:n], geoms).any() or np.isin(c.geom2[:n], geoms).any())

    # --- TaskEnv hooks ------------------------------------------------------------------------------------
    def _backend_reset(self, seed):
        if seed is not None:
            self._rng = np.random.default_rng(int(seed))
        mujoco.mj_resetData(self.model, self.data)
        qpos = STAND_QPOS + self._rng.uniform(-0.01, 0.01, size=STAND_QPOS.shape)
        self.data.ctrl[:] = 0.0
        self.set_state(qpos)
        self.last_terms = {}
        return self.observation()

    def _backend_step(self, action):
        self.data.ctrl[:] = action
        mujoco.mj_step(self.model, self.data, nstep=FRAME_SKIP)
        self.last_terms = self.reward_terms()
        floor = self._task.min_pelvis_height
        terminated = floor is not None and self.data.qpos[2] < floor
        return self.observation(), self.last_terms["reward"], bool(terminated)

    def _backend_bounds(self):
        return self._low, self._high

    def render(self):
        if self._renderer is None:
            h, w = self.render_size
            try:
                self._renderer = mujoco.Renderer(self.model, height=h, width=w)
            except Exception as e:   # no EGL/OSMesa context, or a bad MUJOCO_GL
                raise gl_backend_error(e) from None
        self._renderer.update_scene(self.data, camera="track")
        return self._renderer.render()

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
