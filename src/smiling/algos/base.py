"""What an algorithm or an RL backend is to the rest of the library: a registered record (`Algorithm`,
`Backend`), the agent interface every loop relies on (`Agent`), and the settings every run shares
(`RunConfig`). `smiling.algos.registry` holds the records and builds the full `TrainConfig` from them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal, Protocol

import numpy as np

from smiling.envs import validate_task_id
from smiling.utils.config import at_least, at_least_one, check_choice, check_field_types


class Agent(Protocol):
    """Everything the loops (`smiling.algos.offpolicy`), evaluation and checkpoints use of an RL agent. ``state``
    is the agent's whole training state (a pytree); ``params`` what its policy needs (`policy_params`)."""

    def init(self, seed: int) -> Any: ...

    def act(self, state_or_params, obs: np.ndarray, key, evaluation: bool = False) -> tuple[np.ndarray, Any]:
        """A sampled action and the next JAX key."""

    def act_deterministic(self, state_or_params, obs: np.ndarray) -> np.ndarray: ...

    def begin_episode(self, evaluation: bool = False) -> None:
        """Clear per-episode memory (a recurrent agent's latent); the evaluation episode's is kept apart."""

    def policy_params(self, state) -> Any: ...

    def batches(self, source, rng: np.random.Generator, env_steps: int, reward_fn) -> dict[str, np.ndarray]:
        """The training batches for one update round after ``env_steps`` env steps, stacked on a leading axis,
        drawn from ``source`` (a `ReplayBuffer`, or its `RewardCache`) with rewards from ``reward_fn`` (None:
        the env's reward). How many and of what shape is the agent's business (SAC: transitions; DreamerV3:
        sequences; IQ-Learn: transitions beside expert ones)."""

    def update(self, state, batches: dict[str, np.ndarray]) -> tuple[Any, dict[str, float]]:
        """Every gradient step of a round in one jitted call; returns the new state and mean metrics."""

    def to_bytes(self, state) -> bytes: ...

    def from_bytes(self, data: bytes) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Variant:
    """A named change of a config that a label can ask for (``smiling+actions``) and that names a run back."""

    name: str
    apply: Callable[[Any], Any]
    """config -> config with the variant on."""
    present: Callable[[Any], bool]
    """Whether a config carries the variant (runs are named by what they are)."""
    group: str = ""
    """Variants of one (non-empty) group exclude each other."""
    preset: bool = False
    """A preset (`smiling.algos.presets`): the grid applies it before ``--set`` overrides, not after."""


def replace_in(cfg, group: str, **changes):
    """``cfg`` with fields of its settings group ``group`` changed."""
    return dataclasses.replace(cfg, **{group: dataclasses.replace(getattr(cfg, group), **changes)})


def actions_variant(group: str) -> Variant:
    """``+actions``: match (state, action) pairs instead of states (paper §6.2), for an algorithm whose settings
    group has ``use_actions``."""
    return Variant("actions", lambda c: replace_in(c, group, use_actions=True), lambda c: getattr(c, group).use_actions)


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """An algorithm of `smiling imitate` / `train-expert` / `smiling experiment`: one record in the registry.

    Off-policy algorithms give a ``reward_model`` (or none: the env's reward) and maybe their own ``agent``; the
    off-policy loop runs them. An algorithm with its own loop gives ``train`` instead.
    """

    name: str
    summary: str
    """One line for --help."""
    config: type | None = None
    """Its settings group: the field TrainConfig.<name>, flags --<name>.*; frozen, validating itself."""
    imitation: bool = True
    """Learns from demonstrations (``smiling imitate``); False: from the env's reward (``train-expert``)."""
    backends: tuple[str, ...] = ("sac",)
    """The RL backends it runs on (``--rl``); empty when it trains no RL agent."""
    variants: tuple[Variant, ...] = ()
    reward_model: Callable[[Any, Any], Any] | None = None
    """(config, demos) -> a `smiling.rewards.RewardModel` fitted on the demos."""
    agent: Callable[[Any, int, int, Any], Any] | None = None
    """(config, obs_dim, act_dim, demos or None) -> its agent, instead of the backend's."""
    train: Callable[..., dict] | None = None
    """Its own loop, ``train(config, run_dir, meta, demos, resume, quiet) -> summary``."""
    x_axis: str = "step"
    """The metrics column its learning curve is drawn against (BC: grad_steps)."""
    describe: Callable[[Any], str] | None = None
    """config -> the settings a detailed run name lists (`smiling.algos.registry.run_label` with ``detail``)."""
    check: Callable[[Any], None] | None = None
    """Checks of the whole config that its own group cannot make (raise ValueError)."""
    actions: bool = False
    """Always needs the demonstrator's actions (BC); others need them only with ``use_actions`` in their group."""


@dataclasses.dataclass(frozen=True)
class Backend:
    """An RL backend (``--rl``): its settings group TrainConfig.<name> and its agent."""

    name: str
    summary: str
    config: type
    agent: Callable[[Any, int, int], Any]
    """(config, obs_dim, act_dim) -> agent."""
    variants: tuple[Variant, ...] = ()
    """Variants it adds to the algorithms that run on it."""
    check: Callable[[Any], None] | None = None
    algorithms: tuple[str, ...] = ()
    """Algorithms it runs besides those naming it in their ``backends`` (a plug-in backend: e.g. ``("sac",
    "smiling", "dac")``, or a plug-in algorithm's name; `smiling.algos.plugins`)."""


RESUMABLE_CHANGES = ("steps", "checkpoint_every", "keep_policies", "tensorboard", "wandb", "wandb_project")
"""Settings of `RunConfig` a run may change when it resumes, or when a grid counts it as one of its cells: none of
them changes what the run learns. A larger ``steps`` extends it (exactly as one longer run would have gone when the
old budget is a multiple of the horizon and of eval_every: otherwise the last episode was cut short, or an
evaluation falls elsewhere); the others say how often it checkpoints and where it logs."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The settings every run shares: task, budget, loop cadence, evaluation and checkpoints."""

    task: str = "dmc:ball_in_cup-catch"
    """Task id, e.g. dmc:cheetah-run or gym:Hopper-v5 (list them with `smiling tasks`)."""
    steps: int = 100_000
    """Total environment steps."""
    seed: int = 0
    horizon: int = 1000
    """Steps per episode (fixed-length episodes, the paper's setting)."""
    keep_termination: bool = False
    """End episodes on the env's own termination instead of running on to the horizon."""
    seed_steps: int = 5000
    """Uniform-random actions for the first steps, before any update."""
    update_every: int = 50
    """Env steps between update rounds; each round runs update_every * utd gradient steps in one call."""
    eval_every: int = 10_000
    """Evaluate (separate env; mean action unless eval_stochastic) every this many env steps, at the next episode
    end."""
    eval_episodes: int = 5
    eval_stochastic: bool = False
    """Evaluate with actions sampled from the policy (DreamerV3's evaluation protocol; Dreamer samples its
    latents too) instead of the mean action; `smiling evaluate --stochastic` measures the same thing later."""
    checkpoint_every: int = 50_000
    """Checkpoint (agent, buffer, RNG states) every this many env steps, at the next episode end."""
    keep_policies: bool = False
    """Keep every checkpoint's agent (not its replay buffer), e.g. to pick an expert checkpoint afterwards with
    `smiling evaluate/demos --checkpoint STEP`; only the newest checkpoint keeps what resuming needs."""
    buffer_capacity: int = 1_000_000
    tensorboard: bool = False
    """Also write TensorBoard events under RUN_DIR/tb."""
    wandb: bool = False
    """Also log every metrics row to Weights & Biases (pip install -e '.[wandb]' in smiling's checkout; files under
    RUN_DIR/wandb; WANDB_MODE=offline keeps them local). Run name: the run's label, task and seed; group: the
    task."""
    wandb_project: str = "smiling"
    """--wandb: the W&B project."""
    algo: str = "sac"
    """sac: learn from the env's true reward (e.g. an expert); the others imitate demonstrations (`smiling
    imitate --help` lists them)."""
    demos: str | None = None
    """Imitation only: demonstrations (.npz, Minari dir, D4RL .hdf5) or a task id with bundled demos
    (default: the task's bundled demos)."""
    reward_update_every: int = 1000
    """Imitation only: env steps between reward-model updates (paper: 1000)."""
    relabel: Literal["sample", "update"] = "sample"
    """Imitation only: sample = reward each sampled batch with the current reward model (a fresh Monte-Carlo
    draw per sample); update = reward every stored transition once per reward-model update and cache it
    (cheaper for large K while the buffer holds fewer than ~batch x reward_update_every transitions)."""
    rl: str = "sac"
    """RL backend: sac (model-free) or dreamer (DreamerV3, model-based); the reward (true or imitation) is
    the same either way."""

    def __post_init__(self):
        check_field_types(self)
        validate_task_id(self.task)
        at_least_one(self, "steps", "horizon", "update_every", "eval_every", "eval_episodes", "checkpoint_every",
                     "buffer_capacity", "reward_update_every")
        at_least(self, 0, "seed_steps", "seed")
        check_choice(self.relabel, ("sample", "update"), "relabel")
