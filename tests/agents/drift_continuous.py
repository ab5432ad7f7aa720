"""The continuous `drift` probe's learning run, shared by the TD3/DDPG and SAC learning tests: K seeds
as one population (one compile), each member's deterministic episode value as a fraction of the
closed-form optimum (tests/agents/drift.py)."""

import jax
import numpy as np

from jaxtrade.envs.probes import make_probe
from tests.agents.drift import LENGTH, fraction_of_optimum


def problem(length: int = LENGTH):
    """(env, env_params) of `drift_continuous` with the discrete probe's numbers (optimum 0.14)."""
    return make_probe("drift_continuous", episode_length=length, drift=0.01, noise=0.02, cost=0.02)


def configure(cfg, name: str, length: int = LENGTH):
    """Sizes both agents learn the probe with: 32 envs x 16 steps, one gradient step per 8 env steps."""
    cfg.model.update(hidden_dim=32, n_layers=1, encoder_layers=1, dropout=0.0, core="mlp")
    cfg[name].update(n_envs=32, n_steps=length, buffer_size=8192, batch_size=128, learning_starts=1024,
                     utd_ratio=1 / 8, actor_lr=1e-3, critic_lr=1e-3, tau=0.02, gamma=0.99,
                     iterations_per_call=10)
    return cfg


def train(agent, env, env_params, *, seeds, calls: int, length: int = LENGTH):
    """-> (fractions of the optimum before [K], after [K], last metrics) of `calls` x 10 iterations."""
    devices = jax.devices()[:1]
    state = agent.init_seeds(range(seeds), env_params, devices)
    iterate = agent.make_population_iteration(devices)
    values = fraction_of_optimum(agent, env, env_params, length)
    before = np.asarray(values(agent.params(state)))
    for _ in range(calls):
        state, metrics = iterate(state, env_params)
    return before, np.asarray(values(agent.params(state))), metrics
