"""Safe file helpers: every write goes to a temporary file in the same folder and is renamed into place;
every array load uses ``allow_pickle=False``."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file a normal file's mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None


def npz_bytes(arrays: dict[str, np.ndarray], compress: bool = False) -> bytes:
    """The bytes of an ``.npz`` archive holding ``arrays`` (to write atomically or into a checkpoint)."""
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    return buf.getvalue()


def atomic_save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    atomic_write_bytes(path, npz_bytes(arrays))


def npz_from_bytes(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an .npz file's bytes (no pickle)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class MismatchError(ValueError):
    """Saved data that is whole but does not fit what loads it (another network size, task or buffer shape)."""


def restore_tree(target, saved):
    """``target``'s pytree with the arrays of ``saved`` (msgpack bytes of `flax.serialization.to_bytes`, or a
    state dict), refusing, with `MismatchError` naming it, an array whose shape differs from the target's: Flax
    restores any shape, so a checkpoint of another network size or task loaded silently and failed later in JAX."""
    import flax.serialization
    import jax

    try:
        restored = (flax.serialization.from_bytes(target, saved) if isinstance(saved, bytes)
                    else flax.serialization.from_state_dict(target, saved))
    except ValueError as e:  # Flax names keys or fields the target has and the saved tree lacks: another depth
        if "do not match" not in str(e):
            raise
        raise MismatchError(f"its arrays are not those this config builds ({e})") from None
    if jax.tree.structure(restored) != jax.tree.structure(target):  # (a subtree where the target has an array)
        raise MismatchError("its arrays are not laid out as this config builds them")
    for (path, want), got in zip(jax.tree_util.tree_flatten_with_path(target)[0], jax.tree.leaves(restored)):
        if np.shape(want) != np.shape(got):
            raise MismatchError(f"{jax.tree_util.keystr(path)} was saved with shape {np.shape(got)}, this config "
                                f"builds {np.shape(want)}")
    return restored
