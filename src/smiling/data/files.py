"""Reading and writing demonstrations: smiling's ``.npz``, Minari datasets on disk, D4RL-style HDF5.

Nothing here downloads. Every loader validates what it reads (`check_arrays`) and raises `DemoError`
naming the file and the problem. ``.npz`` files are read with ``allow_pickle=False``; metadata is stored as a
JSON string, never as an object array.

``.npz`` layout: ``observations`` (E, T+1, d), optional ``actions`` (E, T, a) and ``rewards`` (E, T),
``metadata`` (0-d unicode array holding JSON).
"""

from __future__ import annotations

import json
import os
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

from smiling.data.demos import DemoError, Demos, check_arrays, stack_episodes
from smiling.envs import make_env
from smiling.utils.io import atomic_write_bytes, npz_bytes

BUNDLED_PACKAGE = "smiling.data.bundled"


def _bundled_name(task: str) -> str:
    return task.replace(":", "-") + ".npz"


def bundled_tasks() -> list[str]:
    """Task ids that have demonstrations shipped inside the package."""
    out = []
    for entry in resources.files(BUNDLED_PACKAGE).iterdir():
        name = entry.name
        if name.endswith(".npz") and "-" in name:
            prefix, rest = name[:-4].split("-", 1)
            out.append(f"{prefix}:{rest}")
    return sorted(out)


def task_dims(task: str) -> tuple[int, int]:
    """(observation size, action size) of ``task``."""
    env = make_env(task)
    dims = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    return dims


def check_task(d: Demos, task: str | None, source: str) -> None:
    """Raise `DemoError` naming ``source`` if demonstrations ``d`` are not for ``task``: another task named in
    their metadata, or another observation or action size."""
    if task is None:
        return
    meta_task = d.metadata.get("task")
    if meta_task is not None and not _same_task(meta_task, task):
        raise DemoError(f"{source}: demonstrations are for task {meta_task!r}, not {task!r}")
    obs_dim, act_dim = task_dims(task)
    if d.obs_dim != obs_dim:
        raise DemoError(f"{source}: observation dimension {d.obs_dim} does not match task {task!r} "
                        f"(observation size {obs_dim})")
    if d.has_actions and d.action_dim != act_dim:
        raise DemoError(f"{source}: action dimension {d.action_dim} does not match task {task!r} "
                        f"(action size {act_dim})")


def _same_task(a: str, b: str) -> bool:
    """Whether two task ids name one task: equal, or the same Gymnasium id with and without the module that
    registers it (``gym:myenvs:Point-v0`` and, once ``myenvs`` is imported, ``gym:Point-v0``)."""
    if a == b or not (a.startswith("gym:") and b.startswith("gym:")):
        return a == b
    (mod_a, _, id_a), (mod_b, _, id_b) = a[4:].rpartition(":"), b[4:].rpartition(":")
    return id_a == id_b and (not mod_a or not mod_b or mod_a == mod_b)


def _build(O, A, R, meta: dict, task: str | None, src: str) -> Demos:
    if task is not None:
        meta["task"] = task
    check_arrays(O, A, R, source=src)
    demos = Demos(O, A, R, meta)
    check_task(demos, task, src)
    return demos


# --- npz ---------------------------------------------------------------------------------------------
def save_npz(demos: Demos, path: str | os.PathLike, compress: bool = True) -> Path:
    """Write ``demos`` to ``path`` atomically (temporary file, then rename); returns the path written, with
    ``.npz`` added if it lacks the suffix (as `numpy.savez` does: `load_demos` tells formats by it)."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = {"observations": demos.observations,
              "metadata": np.array(json.dumps(dict(demos.metadata), sort_keys=True))}
    if demos.actions is not None:
        arrays["actions"] = demos.actions
    if demos.rewards is not None:
        arrays["rewards"] = demos.rewards
    atomic_write_bytes(path, npz_bytes(arrays, compress))
    return path


def load_npz(path: str | os.PathLike, task: str | None = None) -> Demos:
    """Load a ``.npz`` written by `save_npz` (or any npz with an ``observations`` array of shape (E, T+1, d)).

    With ``task``, the observation size must match that task's.
    """
    path = Path(path)
    src = str(path)
    if not path.exists():
        raise DemoError(f"{src}: file not found")
    if not zipfile.is_zipfile(path):
        raise DemoError(f"{src}: not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if "observations" not in files:
                raise DemoError(f"{src}: no 'observations' array (found: {sorted(files)})")
            obs = z["observations"]
            act = z["actions"] if "actions" in files else None
            rew = z["rewards"] if "rewards" in files else None
            meta_raw = z["metadata"] if "metadata" in files else None
    except DemoError:
        raise
    except ValueError as e:  # object arrays need pickle, which we refuse
        raise DemoError(f"{src}: cannot be read without pickle ({e})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DemoError(f"{src}: not a readable .npz file ({type(e).__name__}: {e})") from None
    meta = {}
    if meta_raw is not None:
        try:
            meta = json.loads(str(meta_raw))
        except json.JSONDecodeError as e:
            raise DemoError(f"{src}: metadata is not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            raise DemoError(f"{src}: metadata must be a JSON object")
    for name, a in (("observations", obs), ("actions", act), ("rewards", rew)):
        if a is not None and not isinstance(a, np.ndarray):  # a member that is not a .npy file reads as bytes
            raise DemoError(f"{src}: {name} is not a .npy array inside the archive")
    check_arrays(obs, act, rew, source=src)
    demos = Demos(obs, act, rew, meta)
    check_task(demos, task, src)
    return demos


# --- Minari (HDF5 backend, layout of minari 0.5) -----------------------------------------------------
def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading or writing Minari/D4RL files needs h5py: pip install -e '.[formats]' in "
                          "smiling's checkout") from None
    return h5py


def _minari_file(path: str | os.PathLike) -> Path:
    """A dataset directory, its data/ folder, the main_data.hdf5 file, or a dataset id found locally."""
    p = Path(path)
    candidates = [p, p / "data" / "main_data.hdf5", p / "main_data.hdf5"]
    if not p.exists() and not p.is_absolute():
        root = Path(os.environ.get("MINARI_DATASETS_PATH", Path.home() / ".minari" / "datasets"))
        candidates.append(root / p / "data" / "main_data.hdf5")
    for c in candidates:
        if c.is_file():
            return c
    raise DemoError(f"{path}: no Minari dataset found on disk (looked for data/main_data.hdf5; "
                    f"nothing is downloaded)")


def _box_bounds(space_json: str | None):
    if not space_json:
        return None
    space = json.loads(space_json)
    if space.get("type") != "Box":
        return None
    return np.asarray(space["low"], np.float64), np.asarray(space["high"], np.float64)


def read_minari(path: str | os.PathLike, task: str | None = None, rescale_actions: bool = True,
                truncate: bool = False) -> Demos:
    """Read a Minari dataset already on disk into `Demos` (h5py only; the `minari` package is not needed).

    Episodes must have equal length, or pass ``truncate=True`` to cut all to the shortest. With
    ``rescale_actions`` (default), actions are mapped from the dataset's Box action bounds onto [-1, 1].
    """
    h5py = _h5py()
    f = _minari_file(path)
    src = str(f)
    meta_path = f.parent / "metadata.json"
    info = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    episodes = []
    try:
        with h5py.File(f, "r") as h:
            keys = sorted((k for k in h.keys() if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))
            for k in keys:
                g = h[k]
                if not isinstance(g["observations"], h5py.Dataset):
                    raise DemoError(f"{src}: {k}/observations is a dict space; only flat Box observations are "
                                    f"supported")
                episodes.append((np.asarray(g["observations"]),
                                 np.asarray(g["actions"]) if "actions" in g else None,
                                 np.asarray(g["rewards"]) if "rewards" in g else None))
    except OSError as e:
        raise DemoError(f"{src}: not a readable HDF5 file ({e})") from None
    if not episodes:
        raise DemoError(f"{src}: no episodes")
    O, A, R = stack_episodes(episodes, src, truncate)
    meta = {"source": "minari", "dataset_id": info.get("dataset_id"), "minari_version": info.get("minari_version")}
    bounds = _box_bounds(info.get("action_space"))
    if A is not None and rescale_actions and bounds is not None:
        low, high = bounds
        if not (np.all(low == -1) and np.all(high == 1)):
            A = 2.0 * (A.astype(np.float64) - low) / (high - low) - 1.0
            meta["actions_rescaled_from"] = [low.tolist(), high.tolist()]
    if A is not None and A.ndim == 2:
        A = A[..., None]
    return _build(O, A, R, meta, task, src)


def write_minari(demos: Demos, dataset_dir: str | os.PathLike, dataset_id: str = "smiling/demos-v0") -> Path:
    """Write ``demos`` as a Minari (hdf5) dataset at ``dataset_dir`` (``data/main_data.hdf5`` + metadata)."""
    h5py = _h5py()
    data = Path(dataset_dir) / "data"
    data.mkdir(parents=True, exist_ok=True)
    tmp = data / ".main_data.hdf5.tmp"
    E, T = demos.num_episodes, demos.horizon
    with h5py.File(tmp, "w") as h:
        for e in range(E):
            g = h.create_group(f"episode_{e}")
            g.attrs["id"] = e
            g.attrs["total_steps"] = T
            g.create_dataset("observations", data=demos.observations[e])
            if demos.actions is not None:
                g.create_dataset("actions", data=demos.actions[e])
            if demos.rewards is not None:
                g.create_dataset("rewards", data=demos.rewards[e])
            g.create_dataset("terminations", data=np.zeros(T, bool))
            g.create_dataset("truncations", data=np.arange(T) == T - 1)
            g.create_group("infos")
    os.replace(tmp, data / "main_data.hdf5")
    box = lambda n, lo, hi: json.dumps({"type": "Box", "dtype": "float32", "shape": [n],  # noqa: E731
                                        "low": [lo] * n, "high": [hi] * n})
    info = {"total_episodes": E, "total_steps": E * T, "data_format": "hdf5", "dataset_id": dataset_id,
            "observation_space": box(demos.obs_dim, float("-inf"), float("inf")),
            "action_space": box(demos.action_dim or 1, -1.0, 1.0),
            "minari_version": "0.5.4", "dataset_size": 0.0, "env_spec": None}
    atomic_write_bytes(data / "metadata.json", json.dumps(info).encode())
    return data / "main_data.hdf5"


# --- D4RL-style HDF5 ---------------------------------------------------------------------------------
def read_d4rl(path: str | os.PathLike, task: str | None = None, truncate: bool = False) -> Demos:
    """Read a D4RL-style HDF5 file: flat ``observations`` (N, d), ``actions`` (N, a), ``rewards`` (N,),
    ``terminals`` (N,), ``timeouts`` (N,), and optionally ``next_observations`` (N, d).

    Episodes end where ``terminals | timeouts``. Each episode's last state comes from ``next_observations``
    when present; otherwise its last transition is dropped (its next state is unknown).
    """
    h5py = _h5py()
    p = Path(path)
    src = str(p)
    if not p.is_file():
        raise DemoError(f"{src}: file not found")
    try:
        with h5py.File(p, "r") as h:
            missing = [k for k in ("observations", "actions", "terminals", "timeouts") if k not in h]
            if missing:
                raise DemoError(f"{src}: missing D4RL datasets {missing}")
            obs = np.asarray(h["observations"])
            act = np.asarray(h["actions"])
            rew = np.asarray(h["rewards"]) if "rewards" in h else None
            ends = np.asarray(h["terminals"]).astype(bool) | np.asarray(h["timeouts"]).astype(bool)
            nxt = np.asarray(h["next_observations"]) if "next_observations" in h else None
    except OSError as e:
        raise DemoError(f"{src}: not a readable HDF5 file ({e})") from None
    if obs.ndim != 2 or act.ndim != 2 or len(act) != len(obs) or len(ends) != len(obs):
        raise DemoError(f"{src}: observations/actions/terminals must be (N, d)/(N, a)/(N,) with one N, got "
                        f"{obs.shape}/{act.shape}/{ends.shape}")
    stops = np.flatnonzero(ends) + 1
    starts = np.concatenate([[0], stops[:-1]])
    if len(stops) == 0:
        raise DemoError(f"{src}: no episode ends (terminals or timeouts) found")
    eps = []
    for s, e in zip(starts, stops):
        if nxt is not None:
            o = np.concatenate([obs[s:e], nxt[e - 1: e]])
            a, r = act[s:e], None if rew is None else rew[s:e]
        else:
            o, a, r = obs[s:e], act[s: e - 1], None if rew is None else rew[s: e - 1]
        eps.append((o, a, r))
    O, A, R = stack_episodes(eps, src, truncate)
    return _build(O, A, R, {"source": "d4rl"}, task, src)


def write_d4rl(demos: Demos, path: str | os.PathLike) -> Path:
    """Write ``demos`` as a D4RL-style HDF5 file (with ``next_observations``, ``timeouts`` at episode ends)."""
    h5py = _h5py()
    if demos.actions is None:
        raise DemoError("D4RL files hold (s, a) transitions: these demonstrations have no actions")
    path = Path(path)
    E, T = demos.num_episodes, demos.horizon
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as h:
        h.create_dataset("observations", data=demos.observations[:, :-1].reshape(E * T, -1))
        h.create_dataset("next_observations", data=demos.observations[:, 1:].reshape(E * T, -1))
        h.create_dataset("actions", data=demos.actions.reshape(E * T, -1))
        h.create_dataset("rewards", data=(demos.rewards if demos.rewards is not None
                                          else np.zeros((E, T), np.float32)).reshape(-1))
        h.create_dataset("terminals", data=np.zeros(E * T, bool))
        h.create_dataset("timeouts", data=np.tile(np.arange(T) == T - 1, E))
    os.replace(tmp, path)
    return path


# --- one entry point ---------------------------------------------------------------------------------
def load_demos(source: str | os.PathLike, task: str | None = None) -> Demos:
    """Demonstrations from a task id with bundled demos (``"dmc:cheetah-run"``), an ``.npz`` file, a Minari
    dataset directory, or a D4RL ``.hdf5``/``.h5`` file."""
    s = str(source)
    p = Path(s)
    if ":" in s and not p.exists():
        name = _bundled_name(s)
        ref = resources.files(BUNDLED_PACKAGE) / name
        if not ref.is_file():
            raise DemoError(f"no bundled demonstrations for {s!r} (bundled: {', '.join(bundled_tasks()) or 'none'});"
                            f" pass a file with --demos")
        with resources.as_file(ref) as f:
            return load_npz(f, task=task or s)
    if p.suffix == ".npz":
        return load_npz(p, task)
    if p.suffix in (".hdf5", ".h5") and p.name != "main_data.hdf5":
        return read_d4rl(p, task)
    if p.is_dir() or p.name == "main_data.hdf5":
        return read_minari(p, task)
    if not p.exists():
        raise DemoError(f"{s}: file not found")
    raise DemoError(f"{s}: unknown demonstration format (expected .npz, a Minari dataset directory, or a D4RL "
                    f".hdf5 file)")
