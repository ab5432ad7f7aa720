"""The `Agent` protocol every learning agent implements, and how populations run.

    agent = registry.make_agent(config, env)      # by config.agent.name; built once
    state = agent.init(key, env_params, devices)  # pytree, leading device axis [n_devices, ...]
    iterate = agent.make_iteration()              # one jax.pmap over the devices
    state, metrics = iterate(state, env_params)   # metrics: dict of [n_devices] or [n_devices, k]
    params = agent.params(state)                  # device 0's network params (devices.first_device)
    policy = agent.policy(params)                 # envs.base.Policy: key-first act, plus dist

1. `metrics` hold every `TradingStats` field (summed over the rollout and all devices),
   `env_steps`, and the agent's `diagnostics`: health metrics (approx_kl, clip_frac, ...) that go
   to the logs and never into model selection. With k iterations per call
   (`<agent>.iterations_per_call`) every metric is [n_devices, k].
2. `model_config` (plain dict), `action_spec` and `obs_spec` are all a saved model needs besides its
   params: `registry.policy_from_spec(spec, params)` rebuilds the policy with no env.
3. Populations (one generic mechanism: a population axis right after the device axis). Traced
   hyperparameters are pytree leaves of the state, so K members -- different seeds and/or settings,
   the same static shapes -- train in one compile:

       hparams = agent.stack_hparams([...K settings...])       # leaves [K]
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

import dataclasses
import functools
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from jaxtrade.agents import devices as devices_lib
from jaxtrade.envs.base import ContinuousSpec, DiscreteSpec, ObsSpec


@runtime_checkable
class Agent(Protocol):
    """What `train.loop.run`, walk-forward, search and hybrids call: nothing more, nothing less.

    Every agent keeps its state as a pytree with a leading device axis (a population: [n_dev, K, ...]);
    its traced hyperparameters are a flax struct dataclass of float32 leaves inside that state."""

    name: str                                 # the registry name, recorded in every artifact
    model_config: dict                        # plain dict: with action_spec all a saved model needs
    action_spec: Any
    obs_spec: Any
    diagnostics: tuple[str, ...]              # health metrics: logs only, never model selection
    hparams: Any                              # the config's traced hyperparameters (struct dataclass)
    frozen: tuple[str, ...]                   # parameter modules never updated
    n_envs: int                               # environments per device
    compiles: int                             # traces of the training iteration so far

    def env_steps_per_iteration(self, n_devices: int) -> int: ...

    def hparam_names(self) -> tuple[str, ...]: ...           # the traced hyperparameters, by name

    def stack_hparams(self, members) -> Any: ...             # K settings -> leaves [K]

    def init(self, key, env_params, devices=None, hparams=None) -> Any: ...

    def init_population(self, keys, env_params, hparams, devices=None) -> Any: ...

    def init_seeds(self, seeds, env_params, devices=None) -> Any: ...

    def make_iteration(self, devices=None): ...

    def make_population_iteration(self, devices=None): ...

    def params(self, state) -> Any: ...

    def opt_state(self, state) -> Any: ...                   # device 0's optimizer state

    def with_params(self, state, params, opt_state=None) -> Any: ...

    def with_encoder(self, state, encoder_params) -> Any: ...

    def policy(self, params, deterministic: bool = True): ...

    def static_key(self, config) -> Any: ...          # equal keys: one agent, one compile serves both

    def hparams_from(self, config) -> Any: ...         # the traced hyperparameters a config sets

    def to_checkpoint(self, state) -> Any: ...         # what `latest` saves of the state (PPO: all)

    def from_checkpoint(self, state, restored) -> Any: ...   # a state from what to_checkpoint saved


def action_spec_of(env):
    """env.action_spec; derived from env.discrete / env.action_dim for envs that predate specs."""
    spec = getattr(env, "action_spec", None)
    if spec is not None:
        return spec
    return DiscreteSpec(int(env.action_dim)) if env.discrete else ContinuousSpec((int(env.action_dim),))


class TracedFields:
    """Mixin of every agent's traced-hyperparameter struct (float32 leaves, [K] for a population)."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def stack(cls, members):
        """K settings -> one instance with leaves [K] (what `init_population` takes)."""
        return jax.tree.map(lambda *x: jnp.stack([jnp.asarray(v, jnp.float32) for v in x]), *members)


def check_keys(section, known, *, name: str) -> dict:
    """Config section `name` (a mapping) as a dict; ValueError naming every key outside `known` by its
    dotted path (`name.key`) and listing the known keys. Every section parser uses it (the agents'
    sections here, and the pipeline's `pretrain`, `pipeline`, `search`, `walk_forward`)."""
    section = dict(section)
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ValueError(f"unknown {name} config key(s) {[f'{name}.{k}' for k in unknown]}; known: "
                         f"{sorted(known)}")
    return section


def static_kwargs(static_cls, traced_cls, section, *, name: str, exclude=()) -> dict:
    """The keys of an agent's config section (`config.<name>`) that are fields of `static_cls`, with
    `frozen` as a tuple; ValueError naming every key that is neither static nor traced (`traced_cls`).
    `exclude`: static fields that come from elsewhere (e.g. `continuous_dist` from the model section)."""
    static = {f.name for f in dataclasses.fields(static_cls)} - set(exclude)
    section = check_keys(section, static | set(traced_cls.names()), name=name)
    kwargs = {k: v for k, v in section.items() if k in static}
    if "frozen" in kwargs:
        frozen = kwargs["frozen"]
        kwargs["frozen"] = (frozen,) if isinstance(frozen, str) else tuple(frozen)
    return kwargs


def _key(key):
    return jax.random.key(key) if isinstance(key, int) else key


def repeat_iterations(step, k: int):
    """fn(carry, env_params) running `step` k times under lax.scan (metrics [k, ...]); `step` if k == 1."""
    if k == 1:
        return step

    def fn(carry, env_params):
        return jax.lax.scan(lambda c, _: step(c, env_params), carry, None, length=k)
    return fn


class DeviceAgent:
    """The algorithm-independent half of every built-in agent: devices, populations, the one pmap per
    agent, params and optimizer state of device 0, warm starts, checkpoints. An algorithm subclasses
    it and provides:

    - `static_hparams` / `traced_hparams`: its hyperparameter classes (`from_config`; the traced one
      also `names()` and `stack`); `hp` (static, with n_envs, n_steps, frozen, iterations_per_call)
      and `hparams` (traced) set in `__init__`, plus `env`, `model_config`, `action_spec`, `obs_spec`;
    - `_build(key, env_params, hparams, n_dev, first)`: one member's state with a leading device axis
      (traceable; its state has `train_state.params` and `train_state.opt_state`);
    - `train_iteration` and `iteration_kwargs()`: one iteration on one device's envs, called as
      `train_iteration(state, env_params, **iteration_kwargs(), axis_name=...)`;
    - `policy(params, deterministic)`.
    """

    static_hparams: Any = None
    traced_hparams: Any = None

    def __init__(self):
        self.devices = None                   # this process's devices, set by init / init_population
        self.compiles = 0                     # traces (= compiles) of the training iteration so far
        self._iterations: dict = {}
        # One compile of the state builder per agent, reused by every init (walk-forward folds).
        self._build_jit = jax.jit(self._build, static_argnums=(3, 4))

    def _reset_envs(self, reset_key, env_params, n_dev: int, first: int):
        """(env_state, obs) of n_dev x n_envs envs, leaves [n_dev, n_envs, ...]: env g (global index,
        first + local) resets with fold_in(reset_key, g), so runs do not depend on the device split."""
        n_envs = self.hp.n_envs
        keys = jax.vmap(jax.random.fold_in, (None, 0))(reset_key, first + jnp.arange(n_dev * n_envs))
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(keys, env_params)
        return jax.tree.map(lambda x: x.reshape((n_dev, n_envs) + x.shape[1:]), (env_state, obs))

    @property
    def n_envs(self) -> int:
        return self.hp.n_envs

    @property
    def frozen(self) -> tuple[str, ...]:
        return tuple(self.hp.frozen)

    def env_steps_per_iteration(self, n_devices: int) -> int:
        return self.hp.n_envs * self.hp.n_steps * int(n_devices)

    def hparam_names(self) -> tuple[str, ...]:
        return self.traced_hparams.names()

    def stack_hparams(self, members):
        return self.traced_hparams.stack(members)

    def static_key(self, config):
        """Configs with equal static keys share one agent (and its compiled iteration)."""
        return self.static_hparams.from_config(config)

    def hparams_from(self, config):
        return self.traced_hparams.from_config(config)

    def _fill_obs_spec(self, env_params):
        if self.obs_spec is None:   # envs that predate obs_spec: read it off one reset
            obs, _ = jax.eval_shape(self.env.reset, jax.random.key(0), env_params)
            self.obs_spec = ObsSpec.from_obs(obs)

    def init(self, key, env_params, devices=None, hparams: Any = None):
        """Carry with a leading device axis, placed on `devices` (default: all local devices).

        key: a jax.random.key or an int seed. hparams: traced hyperparameters (default: the config's).
        """
        devices = self._use(devices)
        hparams = self.hparams if hparams is None else hparams
        self._fill_obs_spec(env_params)
        build = self._build_jit               # one compile instead of dozens of eager ones
        first = devices_lib.global_env_offset(self.hp.n_envs, devices)
        return devices_lib.put_sharded(build(_key(key), env_params, hparams, len(devices), first), devices)

    def init_population(self, keys, env_params, hparams, devices=None):
        """K members: keys [K] (jax.random keys), hparams leaves [K] (`agent.stack_hparams`).
        -> Carry with leaves [n_devices, K, ...], placed on `devices`."""
        devices = self._use(devices)
        self._fill_obs_spec(env_params)
        k = len(keys)
        bad = [n for n in self.hparam_names() if jnp.shape(getattr(hparams, n)) != (k,)]
        if bad:
            raise ValueError(f"init_population: hparams {bad} must have shape [K={k}] like keys "
                             "(use agent.stack_hparams)")
        # Member by member, then stacked, rather than vmap(_build): a vmapped orthogonal initializer
        # is a batched QR, whose jaxlib CPU kernel (lapack geqrf through ParallelBatchMap) can
        # deadlock on a 2-thread host pool (seen on the 2-core CPU: the first iteration never
        # returned). One compile either way; the values are the same.
        build = self._build_jit
        first = devices_lib.global_env_offset(self.hp.n_envs, devices)
        members = [build(keys[i], env_params, jax.tree.map(lambda x, i=i: x[i], hparams), len(devices), first)
                   for i in range(k)]
        carry = jax.tree.map(lambda *xs: jnp.stack(xs, axis=1), *members)
        return devices_lib.put_sharded(carry, devices)

    def init_seeds(self, seeds, env_params, devices=None):
        """A population of one member per seed in `seeds`, every member with the config's traced
        hyperparameters: member k is the run `init(seeds[k], ...)` would start (same keys), trained
        side by side by `make_population_iteration` in one compile. Leaves [n_devices, K, ...]."""
        keys = jnp.stack([jax.random.key(int(s)) for s in seeds])
        hparams = self.stack_hparams([self.hparams] * len(keys))
        return self.init_population(keys, env_params, hparams, devices)

    def _use(self, devices):
        devices = devices_lib.select_devices(None, devices)
        if self.devices is not None and list(self.devices) != list(devices):
            self._iterations.clear()          # compiled for other devices
        self.devices = list(devices)
        return self.devices

    def with_params(self, state, params, opt_state=None):
        """`state` with its network params replaced by `params` (unreplicated; a warm start or a best
        model), on every device (and every member of a population); env and recurrent states as they
        were, the optimizer's too unless `opt_state` (unreplicated, of the same optimizer: a warm
        start that keeps Adam's moments) replaces it."""
        # A population's leaves are [K, ...]: the same params go to every member.
        def fit(t, p):
            return jnp.broadcast_to(jnp.asarray(p, t.dtype), t.shape)

        params = jax.tree.map(fit, self.params(state), params)
        changes = {"params": devices_lib.put_replicated(params, self.devices)}
        if opt_state is not None:
            opt_state = jax.tree.map(fit, devices_lib.first_device(state.train_state.opt_state), opt_state)
            changes["opt_state"] = devices_lib.put_replicated(opt_state, self.devices)
        return state._replace(train_state=state.train_state._replace(**changes))

    def with_encoder(self, state, encoder_params):
        """`state` with only its params["encoder"] replaced by `encoder_params` (unreplicated, one
        member's: a pretrained encoder), in every member and on every device; each member's core and
        heads, the optimizer, env and recurrent states stay as they were. ValueError unless the tree
        and the leaf shapes are exactly those of the network's encoder."""
        params = self.params(state)
        current = params["encoder"]
        lead = jnp.ndim(state.train_state.step) - 1       # step: [n_dev] or, a population, [n_dev, K]
        expected = jax.tree.map(lambda x: tuple(jnp.shape(x)[lead:]), current)
        got = jax.tree.map(lambda x: tuple(jnp.shape(x)), encoder_params)
        if jax.tree.structure(current) != jax.tree.structure(encoder_params) or expected != got:
            raise ValueError(f"with_encoder: the encoder params do not fit this network's encoder "
                             f"(expected shapes {expected}, got {got})")
        return self.with_params(state, dict(params, encoder=encoder_params))

    def _step(self):
        step = functools.partial(self.train_iteration, **self.iteration_kwargs(), axis_name=devices_lib.AXIS)
        step = repeat_iterations(step, self.hp.iterations_per_call)

        def counted(state, env_params):
            self.compiles += 1                # Python runs only while jax traces: once per compile
            return step(state, env_params)

        return counted

    def _pmap(self, kind: str, devices, fn):
        devices = list(devices) if devices is not None else (self.devices or jax.local_devices())
        key = (kind, tuple(devices))
        if key not in self._iterations:       # one compiled iteration per agent, reused across runs
            self._iterations[key] = jax.pmap(fn, axis_name=devices_lib.AXIS, in_axes=(0, None),
                                             donate_argnums=0, devices=devices_lib.pmap_devices(devices))
        return self._iterations[key]

    def make_iteration(self, devices=None):
        """-> pmapped fn(state, env_params) -> (state, metrics); state donated; env_params broadcast.
        metrics: dict of arrays [n_devices] (identical across devices), or [n_devices, k] when
        ppo.iterations_per_call = k > 1. devices: default those of the last `init` (else all local
        devices), matching the state; on multi-process runs the pmap spans every process's devices.
        The same function comes back on every call (walk-forward and search reuse one compile)."""
        return self._pmap("single", devices, self._step())

    def make_population_iteration(self, devices=None):
        """-> pmap over devices of vmap over the population; metrics [n_devices, K] (or [.., K, k])."""
        return self._pmap("population", devices, jax.vmap(self._step(), in_axes=(0, None)))

    def params(self, state):
        """Device 0's network params (leaves [K, ...] for a population state)."""
        return devices_lib.first_device(state.train_state.params)

    def to_checkpoint(self, state):
        """`latest` holds the whole state (resume continues bit for bit)."""
        return state

    def from_checkpoint(self, state, restored):
        return restored

    def opt_state(self, state):
        """Device 0's optimizer state (leaves [K, ...] for a population state)."""
        return devices_lib.first_device(state.train_state.opt_state)
