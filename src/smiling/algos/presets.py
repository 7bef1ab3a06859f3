"""Named presets: the authors' settings, as read from their public code (README, "Paper preset and the switches
between it and our defaults"), applied to a `TrainConfig` as defaults that explicit flags then override.

* ``paper``: SMILING's reward side as the reference code has it: raw (unstandardized) states, DDPM linear betas
  with T = 5000, K = 500 evenly spaced noise levels with one eps per (state, level) shared by both networks, the
  cost of the transition's first state s, each SAC batch's rewards z-scored and scaled by 0.1, a learner memory
  of the last 200k states refitted with 98 steps at batch 1024 (about one pass over 100k of them) every 1001 env
  steps, an expert model of 20k steps at batch 1024 (4000 epochs of 5000 states). It leaves ``relabel`` at
  ``sample`` (every SAC batch scored with the current models, as theirs); on a CPU, ``relabel=update`` stands in
  for it at K = 500 (each stored transition scored once per reward-model update, new ones when first sampled,
  always with the current models: the same reward function, with one draw of the noise per transition and
  update instead of one per sampling; at K = 500 that draw's variance is small).
* ``paper-sac``: their SAC: actor and critics 2 x 1024 without LayerNorm, batch 1024, learning rates 1e-4,
  initial temperature 0.1, target entropy -|A|, tau 0.005. Two departures remain: our target critics move every
  gradient step (theirs every second step), and updates are fused in rounds of ``update_every`` env steps (the
  same one update per env step on average).

Each preset touches only the fields listed in `PRESET_FIELDS`, and `matches` tells whether a config carries a
preset's switches (used to name runs).
"""

from __future__ import annotations

import dataclasses

from smiling.diffusion.schedules import Schedule

PAPER_SCHEDULE = Schedule(kind="ddpm", steps=5000, beta_min=1e-4, beta_max=0.02)

PRESET_FIELDS: dict[str, dict[str, object]] = {
    "paper": {
        "reward_update_every": 1001,
        "smiling.standardize": False,
        "smiling.score.schedule": PAPER_SCHEDULE,
        "smiling.num_levels": 500,
        "smiling.levels": "even",
        "smiling.score_state": "current",
        "smiling.normalization": "batch",
        "smiling.reward_std": 0.1,
        "smiling.memory_kind": "fifo",
        "smiling.memory": 200_000,
        "smiling.learner_steps": 98,
        "smiling.expert_steps": 20_000,
        "smiling.cap_errors": False,
        "smiling.score.width": 256,
        "smiling.score.depth": 1,
        "smiling.score.time_dim": 16,
        "smiling.score.lr": 5e-3,
        "smiling.score.weight_decay": 0.01,
        "smiling.score.batch_size": 1024,
    },
    "paper-sac": {
        "seed_steps": 5000,
        "sac.hidden_dims": (1024, 1024),
        "sac.critic_layer_norm": False,
        "sac.num_critics": 2,
        "sac.actor_lr": 1e-4,
        "sac.critic_lr": 1e-4,
        "sac.temp_lr": 1e-4,
        "sac.batch_size": 1024,
        "sac.discount": 0.99,
        "sac.tau": 0.005,
        "sac.init_temperature": 0.1,
        "sac.target_entropy": None,
        "sac.utd": 1,
        "sac.learn_temperature": True,
    },
}
"""Each preset's values, by dotted field name of `TrainConfig`."""

PRESETS = tuple(PRESET_FIELDS)

SIGNATURES: dict[str, tuple[str, ...]] = {
    "paper": ("smiling.standardize", "smiling.score.schedule", "smiling.levels", "smiling.score_state",
              "smiling.normalization", "smiling.memory_kind"),
    "paper-sac": ("sac.hidden_dims", "sac.critic_layer_norm", "sac.batch_size", "sac.actor_lr", "sac.critic_lr"),
}
"""The fields that name a run after a preset (`matches`): its switches, not the budgets (expert steps, K,
memory size) that a study may vary around it."""


def _get(cfg, dotted: str):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _set(cfg, dotted: str, value):
    head, _, rest = dotted.partition(".")
    if not rest:
        return dataclasses.replace(cfg, **{head: value})
    return dataclasses.replace(cfg, **{head: _set(getattr(cfg, head), rest, value)})


def apply_preset(cfg, name: str):
    """A copy of ``cfg`` (a TrainConfig, or a dataclass with its fields) with preset ``name``'s values."""
    if name not in PRESET_FIELDS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    for key, value in PRESET_FIELDS[name].items():
        cfg = _set(cfg, key, value)
    return cfg


def matches(cfg, name: str) -> bool:
    """Whether ``cfg`` holds preset ``name``'s values of its `SIGNATURES` fields."""
    return all(_get(cfg, k) == PRESET_FIELDS[name][k] for k in SIGNATURES[name])
