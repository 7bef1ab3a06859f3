"""A mesh-free Unitree H1 in MJCF, built in Python, and the scenes of the ``humanoid:`` tasks.

The kinematic tree (body offsets, joint axes and ranges) and the inertial properties (mass, centre of mass,
principal inertia and its orientation) are the numbers of the Unitree H1 description in MuJoCo Menagerie
(BSD-3-Clause, (c) Unitree Robotics). Everything else here is our own: the collision shapes are a few capsules,
spheres and boxes per link (no meshes, so the model is a few kB and needs no asset files), and the actuators are
position servos with the per-joint-group gains that HumanoidBench uses for its position-controlled H1.
The right side is the mirror image of the left (y -> -y), computed here rather than written out.

Differences from HumanoidBench's model are listed in docs/humanoids.md: primitive collision shapes, and no
self-collision (robot geoms touch only the world: floor, chair, tunnel, poles, walls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Physics: 2 ms steps, 10 per control step (50 Hz control), Newton solver.
TIMESTEP = 0.002
FRAME_SKIP = 10

# Standing keyframe: pelvis at 0.98 m, knees bent (hip pitch -0.4, knee 0.8, ankle -0.4 on both legs), arms at 0.
STAND_QPOS = np.array([0, 0, 0.98, 1, 0, 0, 0,
                       0, 0, -0.4, 0.8, -0.4,
                       0, 0, -0.4, 0.8, -0.4,
                       0,
                       0, 0, 0, 0,
                       0, 0, 0, 0], dtype=np.float64)

# Position-servo gains per joint group: (kp, kv, force limit).
GAINS = {
    "hip": (200.0, 5.0, 200.0),
    "knee": (300.0, 6.0, 300.0),
    "ankle": (40.0, 2.0, 40.0),
    "torso": (300.0, 6.0, 200.0),
    "shoulder": (100.0, 2.0, 40.0),
    "upper_arm": (100.0, 2.0, 18.0),
}

ROBOT_CONTYPE, ROBOT_CONAFFINITY = 2, 1     # robot geoms collide with the world only
WORLD_CONTYPE, WORLD_CONAFFINITY = 1, 2


@dataclass(frozen=True)
class Link:
    """One body of the left side (or the centre line) of H1, in its parent's frame."""

    name: str
    pos: tuple[float, float, float]
    com: tuple[float, float, float]
    inertia_quat: tuple[float, float, float, float]   # orientation of the principal axes (w, x, y, z)
    mass: float
    diag_inertia: tuple[float, float, float]
    joint: str | None                                 # hinge name; None for the pelvis (free joint)
    axis: str = "y"                                   # "x", "y" or "z"
    joint_range: tuple[float, float] = (0.0, 0.0)
    group: str = ""                                   # key into GAINS
    quat: tuple[float, float, float, float] | None = None
    geoms: tuple[str, ...] = ()                       # MJCF geom attribute strings, left side
    children: tuple["Link", ...] = ()


def _leg() -> Link:
    foot = ('type="capsule" size="0.016" fromto="-0.05 0.025 -0.054 0.15 0.025 -0.054"',
            'type="capsule" size="0.016" fromto="-0.05 -0.025 -0.054 0.15 -0.025 -0.054"')
    ankle = Link("ankle_link", (0, 0, -0.4), (0.06722, 0.00015, -0.04497), (0.489101, 0.503197, 0.565782, 0.432972),
                 0.446, (0.00220848, 0.00218961, 0.000214202), "ankle", "y", (-0.87, 0.52), "ankle", geoms=foot)
    knee = Link("knee_link", (0, 0, -0.4), (-0.00136, -0.00512, -0.1384), (0.626132, -0.034227, -0.0416277, 0.777852),
                1.721, (0.0125237, 0.0123104, 0.0019428), "knee", "y", (-0.26, 2.05), "knee",
                geoms=('type="capsule" size="0.045" fromto="0 0 -0.04 0.01 0 -0.34"',), children=(ankle,))
    pitch = Link("hip_pitch_link", (0, 0.11536, 0), (0.00746, -0.02346, -0.08193),
                 (0.979828, 0.0513522, -0.0169854, -0.192382), 4.152, (0.0829503, 0.0821457, 0.00510909),
                 "hip_pitch", "y", (-3.14, 2.53), "hip",
                 geoms=('type="capsule" size="0.055" fromto="0 0 -0.02 0.01 0 -0.36"',), children=(knee,))
    roll = Link("hip_roll_link", (0.039468, 0, 0), (-0.0058, -0.00319, -9e-05), (0.0438242, 0.70721, -0.0729075, 0.701867),
                2.232, (0.00243264, 0.00225325, 0.00205492), "hip_roll", "x", (-0.43, 0.43), "hip",
                geoms=('type="sphere" size="0.05" pos="0 0.03 0"',), children=(pitch,))
    return Link("hip_yaw_link", (0, 0.0875, -0.1742), (-0.04923, 0.0001, 0.0072), (0.69699, 0.219193, 0.233287, 0.641667),
                2.244, (0.00304494, 0.00296885, 0.00189201), "hip_yaw", "z", (-0.43, 0.43), "hip",
                geoms=('type="capsule" size="0.045" fromto="-0.09 0 0 -0.03 0 0"',), children=(roll,))


def _arm() -> Link:
    elbow = Link("elbow_link", (0.0185, 0, -0.198), (0.15908, -0.000144, -0.015776), (0.0765232, 0.720327, 0.0853116, 0.684102),
                 0.669, (0.00601829, 0.00600579, 0.000408305), "elbow", "y", (-1.25, 2.61), "upper_arm",
                 geoms=('type="capsule" size="0.028" fromto="0.02 0 0 0.27 0 -0.014"',
                        'type="sphere" size="0.036" pos="0.3 0 -0.015"'))
    yaw = Link("shoulder_yaw_link", (0, 0, -0.1343), (0.01365, 0.002767, -0.16266), (0.703042, -0.0331229, -0.0473362, 0.708798),
               0.839, (0.00408038, 0.00370367, 0.000622687), "shoulder_yaw", "z", (-1.3, 4.45), "upper_arm",
               geoms=('type="capsule" size="0.035" fromto="0 0 0.02 0 0 -0.19"',), children=(elbow,))
    roll = Link("shoulder_roll_link", (-0.0055, 0.0565, -0.0165), (0.000679, 0.00115, -0.094076),
                (0.732491, 0.00917179, 0.0766656, 0.676384), 0.793, (0.00170388, 0.00158256, 0.00100336),
                "shoulder_roll", "x", (-0.34, 3.11), "shoulder", quat=(0.976296, -0.216438, 0, 0),
                geoms=('type="capsule" size="0.04" fromto="0 0.0 0.0 0 0 -0.06"',), children=(yaw,))
    return Link("shoulder_pitch_link", (0.0055, 0.15535, 0.42999), (0.005045, 0.053657, -0.015715),
                (0.814858, 0.579236, -0.0201072, -0.00936488), 1.033, (0.00129936, 0.000987113, 0.000858198),
                "shoulder_pitch", "y", (-2.87, 2.87), "shoulder", quat=(0.976296, 0.216438, 0, 0),
                geoms=('type="sphere" size="0.045" pos="0 0.04 0"',), children=(roll,))


TORSO = Link("torso_link", (0, 0, 0), (0.000489, 0.002797, 0.20484), (0.999989, -0.00130808, -0.00282289, -0.00349105),
             17.789, (0.487315, 0.409628, 0.127837), "torso", "z", (-2.35, 2.35), "torso",
             geoms=('type="box" size="0.08 0.11 0.2" pos="0 0 0.26"',
                    'type="capsule" size="0.04" fromto="0.03 0 0.46 0.03 0 0.56"',
                    'type="sphere" size="0.09" pos="0.04 0 0.65"'))
PELVIS = Link("pelvis", (0, 0, 0.98), (-0.0002, 4e-05, -0.04522), (0.498303, 0.499454, -0.500496, 0.501741),
              5.39, (0.0490211, 0.0445821, 0.00824619), None,
              geoms=('type="capsule" size="0.06" fromto="0 0.09 -0.06 0 -0.09 -0.06"',))

# Actuated joints in qpos order (7 free-joint coordinates come first): left leg, right leg, torso, left arm, right arm.
LEG_JOINTS = ("hip_yaw", "hip_roll", "hip_pitch", "knee", "ankle")
ARM_JOINTS = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow")
JOINTS = (tuple(f"left_{j}" for j in LEG_JOINTS) + tuple(f"right_{j}" for j in LEG_JOINTS) + ("torso",)
          + tuple(f"left_{j}" for j in ARM_JOINTS) + tuple(f"right_{j}" for j in ARM_JOINTS))


def _quat_to_mat(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def _fmt(values) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def _mirror_geom(attrs: str) -> str:
    """Reflect the y coordinates in a geom's ``pos``/``fromto`` attribute (left side -> right side)."""
    out = []
    for part in attrs.split('" '):
        key, _, value = part.partition('="')
        value = value.rstrip('"')
        if key in ("pos", "fromto"):
            nums = [float(v) for v in value.split()]
            for i in range(1, len(nums), 3):
                nums[i] = -nums[i]
            value = _fmt(nums)
        out.append(f'{key}="{value}"')
    return " ".join(out)


def _body_xml(link: Link, side: str, mirror: bool, indent: str) -> str:
    """MJCF for ``link`` and its subtree; ``mirror`` reflects the left-side numbers through the y = 0 plane."""
    m = np.diag([1.0, -1.0, 1.0]) if mirror else np.eye(3)
    rot = _quat_to_mat(link.inertia_quat)
    full = m @ rot @ np.diag(link.diag_inertia) @ rot.T @ m       # reflected inertia tensor
    name = f"{side}{link.name}"
    attrs = f'name="{name}" pos="{_fmt(m @ np.asarray(link.pos, float))}"'
    if link.quat is not None:
        w, x, y, z = link.quat
        attrs += f' quat="{_fmt((w, -x, y, -z) if mirror else link.quat)}"'
    lines = [f"{indent}<body {attrs}>",
             f'{indent}  <inertial pos="{_fmt(m @ np.asarray(link.com, float))}" mass="{link.mass}" '
             f'fullinertia="{_fmt([full[0, 0], full[1, 1], full[2, 2], full[0, 1], full[0, 2], full[1, 2]])}"/>']
    if link.joint is None:
        lines.append(f'{indent}  <freejoint name="root"/>')
    else:
        lo, hi = link.joint_range
        if mirror and link.axis in ("x", "z"):          # a reflected roll/yaw turns the other way
            lo, hi = -hi, -lo
        axis = {"x": "1 0 0", "y": "0 1 0", "z": "0 0 1"}[link.axis]
        lines.append(f'{indent}  <joint name="{side}{link.joint}" axis="{axis}" range="{_fmt((lo, hi))}"/>')
    for i, g in enumerate(link.geoms):
        lines.append(f'{indent}  <geom name="{name}_{i}" class="robot" {_mirror_geom(g) if mirror else g}/>')
    return "\n".join(lines)


def _tree_xml(link: Link, side: str, mirror: bool, indent: str, extra: str = "") -> str:
    head = _body_xml(link, side, mirror, indent)
    kids = "\n".join(_tree_xml(c, side, mirror, indent + "  ") for c in link.children)
    parts = [head] + ([extra] if extra else []) + ([kids] if kids else []) + [f"{indent}</body>"]
    return "\n".join(parts)


def _joint_table() -> dict[str, tuple[str, tuple[float, float]]]:
    """Every actuated joint's (gain group, range), both sides (a reflected roll or yaw range changes sign)."""
    table = {}

    def visit(link: Link):
        if link.joint is not None:
            lo, hi = link.joint_range
            if link.joint == "torso":
                table["torso"] = (link.group, (lo, hi))
            else:
                table[f"left_{link.joint}"] = (link.group, (lo, hi))
                table[f"right_{link.joint}"] = (link.group, (-hi, -lo) if link.axis in ("x", "z") else (lo, hi))
        for c in link.children:
            visit(c)

    for root in (_leg(), _arm(), TORSO):
        visit(root)
    return table


def robot_xml() -> tuple[str, str]:
    """MJCF for H1's bodies (pelvis with free joint, legs, torso with head and arms) and for its actuators."""
    torso_children = "\n".join([
        '        <site name="head" pos="0 0 0.7" size="0.01"/>',
        '        <site name="imu" pos="-0.04452 -0.01891 0.27756" size="0.01"/>',
        _tree_xml(_arm(), "left_", False, "        "),
        _tree_xml(_arm(), "right_", True, "        ")])
    torso = _tree_xml(TORSO, "", False, "      ", extra=torso_children)
    legs = "\n".join([_tree_xml(_leg(), "left_", False, "      "), _tree_xml(_leg(), "right_", True, "      ")])
    cam = '      <camera name="track" mode="trackcom" pos="0 -3.5 1.2" xyaxes="1 0 0 0 0.3 1"/>'
    pelvis = _tree_xml(PELVIS, "", False, "    ", extra="\n".join([cam, legs, torso]))
    table = _joint_table()
    acts = []
    for j in JOINTS:
        group, (lo, hi) = table[j]
        kp, kv, force = GAINS[group]
        acts.append(f'    <position name="{j}" joint="{j}" kp="{kp}" kv="{kv}" ctrlrange="{_fmt((lo, hi))}" '
                    f'forcerange="{_fmt((-force, force))}"/>')
    return pelvis, "\n".join(acts)


def scene_xml(world_geoms: str = "") -> str:
    """A complete MJCF scene: floor, H1, and the task's static ``world_geoms`` (already MJCF ``<geom>`` lines)."""
    body, actuators = robot_xml()
    return f"""<mujoco model="smiling-h1">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP}" solver="Newton" iterations="100" ls_iterations="50"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <default>
    <joint damping="1" armature="0.1"/>
    <geom contype="{WORLD_CONTYPE}" conaffinity="{WORLD_CONAFFINITY}" rgba="0.6 0.6 0.65 1"/>
    <default class="robot">
      <geom contype="{ROBOT_CONTYPE}" conaffinity="{ROBOT_CONAFFINITY}" rgba="0.15 0.15 0.18 1"/>
    </default>
  </default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.3 0.35 0.4" rgb2="0.2 0.25 0.3" width="256" height="256"/>
    <material name="grid" texture="grid" texrepeat="1 1" texuniform="true"/>
  </asset>
  <worldbody>
    <light pos="0 0 6" dir="0 0 -1" directional="true"/>
    <geom name="floor" type="plane" size="0 0 0.05" material="grid"/>
{world_geoms}
{body}
  </worldbody>
  <sensor>
    <subtreelinvel name="com_vel" body="pelvis"/>
  </sensor>
  <actuator>
{actuators}
  </actuator>
</mujoco>
"""
