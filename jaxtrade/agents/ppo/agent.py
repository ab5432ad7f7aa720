"""`ppo.make(config, env) -> PPOAgent`: the `Agent` protocol (agents/base.py) for recurrent PPO.

Hyperparameters (`PPOHParams` static, `TracedHParams` traced), the model and the optimizer are built
once here and handed down; nothing below re-reads the config.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxtrade.agents import devices as devices_lib
from jaxtrade.agents.base import action_spec_of
from jaxtrade.agents.ppo import iteration as iteration_lib
from jaxtrade.agents.ppo.config import PPOHParams, TracedHParams
from jaxtrade.agents.ppo.optim import make_optimizer
from jaxtrade.agents.ppo.policy import policy_from_spec
from jaxtrade.agents.ppo.update import TrainState
from jaxtrade.envs.base import ObsSpec
from jaxtrade.models import action_head, make_model, model_config_dict

# Health metrics: for logs, never for model selection.
DIAGNOSTICS = ("policy_loss", "value_loss", "critic_value_loss", "entropy", "approx_kl", "clip_frac",
               "explained_variance", "grad_norm", "loss", "any_nonfinite")


def _key(key):
    return jax.random.key(key) if isinstance(key, int) else key


class PPOAgent:
    """Recurrent PPO over one env (module docstring of agents/base.py for the protocol)."""

    name = "ppo"
    diagnostics = DIAGNOSTICS
    # What a subclass on PPO's state and machinery swaps (A2C): its hyperparameter types and iteration.
    static_hparams = PPOHParams
    traced_hparams = TracedHParams
    train_iteration = staticmethod(iteration_lib.train_iteration)

    def __init__(self, env, hp: PPOHParams, hparams: TracedHParams, model_config: dict, action_spec,
                 obs_spec=None):
        self.env = env
        self.hp = hp
        self.hparams = hparams                # the config's traced values (defaults for init)
        self.model_config = model_config
        self.action_spec = action_spec
        self.obs_spec = obs_spec
        self.model = make_model(model_config, action_spec)
        self.opt = make_optimizer(hp)
        self.discrete = action_head(action_spec)[1]
        self.devices = None                   # this process's devices, set by init / init_population
        self.compiles = 0                     # traces (= compiles) of the training iteration so far
        self._iterations: dict = {}
        # One compile of the state builder per agent, reused by every init (walk-forward folds).
        self._build_jit = jax.jit(self._build, static_argnums=(3, 4))

    # CONFIGURATION
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

    # STATE
    def init_params(self, key, env_params):
        """Unreplicated network params drawn from `key` (what `TrainState.params` starts as)."""
        obs, _ = self.env.reset(jax.random.key(0), env_params)
        obs = jax.tree.map(lambda x: jnp.asarray(x)[None, None], obs)              # [T=1, B=1, ...]
        return self.model.init(key, self.model.initialize_carry(1), obs, jnp.zeros((1, 1), bool))["params"]

    def init_train_state(self, key, env_params, hparams: TracedHParams | None = None) -> TrainState:
        hparams = self.hparams if hparams is None else hparams
        params = self.init_params(key, env_params)
        return TrainState(params, self.opt.init(params, hparams.learning_rates()), jnp.zeros((), jnp.int32))

    def _build(self, key, env_params, hparams, n_dev: int, first: int = 0) -> iteration_lib.Carry:
        """Traceable: one member's Carry with a leading device axis [n_dev, ...]."""
        n_envs = self.hp.n_envs
        n_global = n_dev * n_envs
        init_key, reset_key, run_key = jax.random.split(key, 3)
        train_state = self.init_train_state(init_key, env_params, hparams)
        # Global env indices: on multi-process runs this process holds envs first .. first + n_global.
        reset_keys = jax.vmap(jax.random.fold_in, (None, 0))(reset_key, first + jnp.arange(n_global))
        obs, env_state = jax.vmap(self.env.reset, in_axes=(0, None))(reset_keys, env_params)
        hidden = self.model.initialize_carry(n_global)
        per_device = lambda x: x.reshape((n_dev, n_envs) + x.shape[1:])
        env_state, obs, hidden = jax.tree.map(per_device, (env_state, obs, hidden))
        done = jnp.zeros((n_dev, n_envs), bool)
        stack = lambda x: jnp.broadcast_to(x, (n_dev,) + jnp.shape(x))
        hparams = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hparams)
        return iteration_lib.Carry(jax.tree.map(stack, train_state), env_state, obs, hidden, done,
                                   stack(run_key), jax.tree.map(stack, hparams))

    def _fill_obs_spec(self, env_params):
        if self.obs_spec is None:   # envs that predate obs_spec: read it off one reset
            obs, _ = jax.eval_shape(self.env.reset, jax.random.key(0), env_params)
            self.obs_spec = ObsSpec.from_obs(obs)

    def init(self, key, env_params, devices=None, hparams: TracedHParams | None = None):
        """Carry with a leading device axis, placed on `devices` (default: all local devices).

        key: a jax.random.key or an int seed. hparams: traced hyperparameters (default: the config's).
        """
        devices = self._use(devices)
        hparams = self.hparams if hparams is None else hparams
        self._fill_obs_spec(env_params)
        build = self._build_jit               # one compile instead of dozens of eager ones
        first = devices_lib.global_env_offset(self.hp.n_envs, devices)
        return devices_lib.put_sharded(build(_key(key), env_params, hparams, len(devices), first), devices)

    def init_population(self, keys, env_params, hparams: TracedHParams, devices=None):
        """K members: keys [K] (jax.random keys), hparams leaves [K] (`TracedHParams.stack`).
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

    # ITERATIONS
    def _step(self):
        step = functools.partial(self.train_iteration, env=self.env, model=self.model, opt=self.opt,
                                 hp=self.hp, discrete=self.discrete, axis_name=devices_lib.AXIS)
        step = iteration_lib.repeat_iterations(step, self.hp.iterations_per_call)

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

    # MODEL
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

    def policy(self, params, deterministic: bool = True):
        return policy_from_spec(self.model_config, self.action_spec, params, deterministic)


def make(config, env) -> PPOAgent:
    """PPO for `env` from `config.model` and `config.ppo` (hyperparameters, model, optimizer: once)."""
    model_config = model_config_dict(config.model)
    return PPOAgent(env, PPOHParams.from_config(config), TracedHParams.from_config(config), model_config,
                    action_spec_of(env), getattr(env, "obs_spec", None))


def params_identical_across_devices(carry) -> bool:
    """True if params and optimizer state are bit-identical on every device."""
    return devices_lib.identical_across_devices((carry.train_state.params, carry.train_state.opt_state))
