"""`dqn.make(config, env) -> DQNAgent`: the `Agent` protocol (agents/base.py) for double DQN with a
replay buffer in device memory.

1. Hyperparameters (`DQNHParams` static, `TracedHParams` traced), the Q network and the optimizer are
   built once here and handed down; nothing below re-reads the config.
2. The state is `iteration.Carry`: train state (online and target params, optimizer, counters), env
   states and observations, this device's replay buffer, the iteration key, the traced
   hyperparameters. Leaves [n_devices, ...], a population [n_devices, K, ...].
3. What does not depend on the algorithm is `agents.base.DeviceAgent`'s, shared with PPO and A2C:
   hyperparameter handling through the `static_hparams` / `traced_hparams` class attributes,
   placement and the pmap cache, init and population init (to which DQN adds the buffers), params,
   warm starts and the encoder transplant.
4. Checkpoints: `to_checkpoint(state)` is the whole state when `dqn.save_buffer` (resume continues
   bit for bit), and the state without the replay buffer (`replay=None`) otherwise. The buffer is
   `transition_bytes * dqn.buffer_size` per device and member, transition_bytes = 2 * obs bytes
   (the observation and the one the return bootstraps from) + 12 (int32 action, float32 return and
   discount): `replay_bytes(n_devices, members)` computes it and `init` logs it. Without the buffer,
   `from_checkpoint` restores everything else and starts from an empty buffer: no gradient step until
   `learning_starts` transitions are collected again, and the resumed run is NOT bit-identical to an
   uninterrupted one.
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np

from jaxtrade.agents import devices as devices_lib
from jaxtrade.agents import replay as replay_lib
from jaxtrade.agents.base import DeviceAgent, action_spec_of
from jaxtrade.agents.dqn import iteration as iteration_lib
from jaxtrade.agents.dqn.collect import example_transition
from jaxtrade.agents.dqn.config import DQNHParams, TracedHParams
from jaxtrade.agents.dqn.optim import make_optimizer
from jaxtrade.agents.dqn.policy import policy_from_spec
from jaxtrade.models import make_q_network, model_config_dict

log = logging.getLogger("jaxtrade")

# Health metrics: for logs, never for model selection.
DIAGNOSTICS = ("q_loss", "q_mean", "td_error", "grad_norm", "epsilon", "buffer_size", "updates",
               "any_nonfinite")


class DQNAgent(DeviceAgent):
    """Double DQN over one env with discrete actions (module docstring of agents/base.py for the
    protocol, of this module for the state and its checkpoints)."""

    name = "dqn"
    diagnostics = DIAGNOSTICS

    def __init__(self, env, hp: DQNHParams, hparams: TracedHParams, model_config: dict, action_spec,
                 obs_spec=None):
        self.env = env
        self.hp = hp
        self.hparams = hparams                # the config's traced values (defaults for init)
        self.model_config = model_config
        self.action_spec = action_spec
        self.obs_spec = obs_spec
        self.net = make_q_network(model_config, action_spec, dueling=hp.dueling)
        self.opt = make_optimizer(hp)
        super().__init__()
        if self.net.core_type != "mlp":
            log.info("dqn: model.core=%r runs one step from its zero state per transition (no memory; "
                     "models/q_network.py)", self.net.core_type)

    static_hparams = DQNHParams
    traced_hparams = TracedHParams
    train_iteration = staticmethod(iteration_lib.train_iteration)
    # One transition of the buffer; the continuous off-policy agents (agents/offpolicy.py), which reuse
    # this class's buffers, placement and checkpoints, replace it with theirs.
    example_transition = staticmethod(example_transition)

    # CONFIGURATION
    def replay_bytes(self, n_devices: int, members: int = 1) -> int:
        """Bytes of every replay buffer of a run: what `latest` holds on top of the rest of the state
        when dqn.save_buffer (transition bytes x buffer_size x devices x population members)."""
        if self.obs_spec is None:
            raise ValueError("replay_bytes needs the observation spec: the env has none before `init`")
        obs = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in self.obs_spec.as_dict().items()}
        per = replay_lib.transition_bytes(self.example_transition(obs))
        return per * self.hp.buffer_size * int(n_devices) * int(members)

    # STATE
    def init_params(self, key, env_params):
        """Unreplicated online network params drawn from `key`."""
        obs, _ = self.env.reset(jax.random.key(0), env_params)
        return self.net.init(key, jax.tree.map(lambda x: jnp.asarray(x)[None], obs))["params"]

    def init_train_state(self, key, env_params, hparams: TracedHParams | None = None):
        """TrainState of one member: online params drawn from `key`, the target a copy of them."""
        hparams = self.hparams if hparams is None else hparams
        params = self.init_params(key, env_params)
        zero = jnp.zeros((), jnp.int32)
        return iteration_lib.TrainState(params, params, self.opt.init(params, {"q": hparams.lr}), zero, zero)

    def _build(self, key, env_params, hparams, n_dev: int, first: int = 0) -> iteration_lib.Carry:
        """Traceable: one member's Carry with a leading device axis [n_dev, ...] and replay=None (the
        buffers are made on the host and placed per device: `_with_replay`). Keys as in PPO's."""
        init_key, reset_key, run_key = jax.random.split(key, 3)
        train_state = self.init_train_state(init_key, env_params, hparams)
        env_state, obs = self._reset_envs(reset_key, env_params, n_dev, first)
        replicate = lambda tree: jax.tree.map(lambda x: jnp.broadcast_to(x, (n_dev,) + jnp.shape(x)), tree)
        hparams = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hparams)
        return iteration_lib.Carry(replicate(train_state), env_state, obs, None, replicate(run_key),
                                   replicate(hparams))

    def _with_replay(self, carry, lead: tuple):
        """`carry` (obs leaves [*lead, n_envs, ...]) with empty buffers [*lead, buffer_size, ...], each
        device's made on the host and sent to it (never every device's buffer through one device)."""
        obs = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[len(lead) + 1:], x.dtype), carry.obs)
        example = self.example_transition(obs)
        per = replay_lib.transition_bytes(example)
        log.info("%s: %d replay buffer(s) (devices x members: %s) x %d transitions x %d bytes = %.1f MiB, "
                 "in `latest` unless %s.save_buffer=False", self.name, int(np.prod(lead)),
                 " x ".join(map(str, lead)),
                 self.hp.buffer_size, per, int(np.prod(lead)) * self.hp.buffer_size * per / 2**20, self.name)
        replay = replay_lib.host_zeros(example, tuple(lead) + (self.hp.buffer_size,))
        return devices_lib.put_sharded(carry._replace(replay=replay), self.devices)

    def init(self, key, env_params, devices=None, hparams: TracedHParams | None = None):
        """DeviceAgent.init (key: a jax.random.key or an int seed; hparams default: the config's) with an
        empty replay buffer on every device."""
        carry = super().init(key, env_params, devices, hparams)
        return self._with_replay(carry, (len(self.devices),))

    def init_population(self, keys, env_params, hparams: TracedHParams, devices=None):
        """DeviceAgent.init_population (keys [K], hparams leaves [K] from `stack_hparams`; leaves
        [n_devices, K, ...]) with an empty buffer per device and member."""
        carry = super().init_population(keys, env_params, hparams, devices)
        return self._with_replay(carry, (len(self.devices), len(keys)))

    def with_params(self, state, params, opt_state=None):
        """DeviceAgent.with_params (params, and optionally the optimizer state, replaced on every device
        and member), with the target network reset to the new params."""
        state = super().with_params(state, params, opt_state)
        # A copy, not the same arrays: the iteration donates its state, and no buffer can be donated twice.
        target = jax.tree.map(lambda x: jnp.array(x, copy=True), state.train_state.params)
        return state._replace(train_state=state.train_state._replace(target_params=target))

    # ITERATIONS
    def iteration_kwargs(self) -> dict:
        return dict(env=self.env, net=self.net, opt=self.opt, hp=self.hp)

    # CHECKPOINTS
    def to_checkpoint(self, state):
        """What `latest` saves: the whole state if dqn.save_buffer, else the state with replay=None
        (module docstring, 4)."""
        return state if self.hp.save_buffer else state._replace(replay=None)

    def from_checkpoint(self, state, restored):
        """The training state from `restored` (what `to_checkpoint` saved, restored into its leaves'
        types: jax or numpy arrays, typed PRNG keys), placed on this agent's devices. `state`: a full
        state of the same shapes (e.g. freshly initialized): without a saved buffer, its buffers'
        shapes give the empty ones."""
        if restored.replay is None:
            log.warning("%s: `latest` holds no replay buffer (%s.save_buffer=False): resuming with an "
                        "empty buffer, no gradient step before %d transitions per device, and a run that "
                        "is not bit-identical to an uninterrupted one", self.name, self.name,
                        self.hp.learning_starts)
            restored = restored._replace(replay=replay_lib.clear(state.replay))
        return devices_lib.put_sharded(restored, self.devices or jax.local_devices())

    # MODEL
    def policy(self, params, deterministic: bool = True):
        return policy_from_spec(self.model_config, self.action_spec, params, deterministic)


def make(config, env) -> DQNAgent:
    """DQN for `env` from `config.model` and `config.dqn` (hyperparameters, network, optimizer: once).
    ValueError for an env without discrete actions."""
    spec = action_spec_of(env)
    model_config = model_config_dict(config.model)
    return DQNAgent(env, DQNHParams.from_config(config), TracedHParams.from_config(config), model_config,
                    spec, getattr(env, "obs_spec", None))


def params_identical_across_devices(carry) -> bool:
    """True if the online and target params and the optimizer state are bit-identical on every device."""
    ts = carry.train_state
    return devices_lib.identical_across_devices((ts.params, ts.target_params, ts.opt_state))
