"""The `Agent` protocol every learning agent implements, and how populations run.

    agent = ppo.make(config, env)                 # hyperparameters, model and optimizer built once
    state = agent.init(key, env_params, devices)  # pytree, leading device axis [n_devices, ...]
    iterate = agent.make_iteration()              # one jax.pmap over the devices
    state, metrics = iterate(state, env_params)   # metrics: dict of [n_devices] or [n_devices, k]
    params = agent.params(state)                  # device 0's network params (devices.first_device)
    policy = agent.policy(params)                 # envs.base.Policy: key-first act, plus dist

1. `metrics` hold every `TradingStats` field (summed over the rollout and all devices),
   `env_steps`, and the agent's `diagnostics`: health metrics (approx_kl, clip_frac, ...) that go
   to the logs and never into model selection. With k iterations per call
   (`ppo.iterations_per_call`) every metric is [n_devices, k].
2. `model_config` (plain dict), `action_spec` and `obs_spec` are all a saved model needs besides its
   params: `ppo.policy_from_spec(model_config, action_spec, params)` rebuilds the policy with no env.
3. Populations (one generic mechanism: a population axis right after the device axis). Traced
   hyperparameters are pytree leaves of the state, so K members -- different seeds and/or settings,
   the same static shapes -- train in one compile:

       hparams = TracedHParams.stack([...K settings...])       # leaves [K]
       state = agent.init_population(keys [K], env_params, hparams, devices)  # leaves [n_dev, K, ...]
       iterate = agent.make_population_iteration()             # pmap over devices of vmap over K
       state, metrics = iterate(state, env_params)             # metrics [n_dev, K] or [n_dev, K, k]
       params = agent.params(state)                            # leaves [K, ...]

   Member i equals a single run from `agent.init(keys[i], env_params, devices, hparams=member i)`
   (to float tolerance: vmap may reorder summations). Devices still average gradients inside each
   member, so a population on 4 devices is 4 x n_envs envs per member.
   `agent.init_seeds(seeds, env_params, devices)` is the population of one member per seed with the
   config's settings (what `train.seeds` trains: many seeds as one run).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from jaxtrade.envs.base import ContinuousSpec, DiscreteSpec


@runtime_checkable
class Agent(Protocol):
    model_config: dict
    action_spec: Any
    obs_spec: Any
    diagnostics: tuple[str, ...]

    def init(self, key, env_params, devices=None) -> Any: ...

    def make_iteration(self): ...

    def params(self, state) -> Any: ...

    def policy(self, params, deterministic: bool = True): ...


def action_spec_of(env):
    """env.action_spec; derived from env.discrete / env.action_dim for envs that predate specs."""
    spec = getattr(env, "action_spec", None)
    if spec is not None:
        return spec
    return DiscreteSpec(int(env.action_dim)) if env.discrete else ContinuousSpec((int(env.action_dim),))
