"""`ppo.make(config, env) -> PPOAgent`: the `Agent` protocol (agents/base.py) for recurrent PPO.

Hyperparameters (`PPOHParams` static, `TracedHParams` traced), the model and the optimizer are built
once here and handed down; nothing below re-reads the config.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxtrade.agents import devices as devices_lib
from jaxtrade.agents.base import DeviceAgent, action_spec_of
from jaxtrade.agents.ppo import iteration as iteration_lib
from jaxtrade.agents.ppo.config import PPOHParams, TracedHParams
from jaxtrade.agents.ppo.optim import make_optimizer
from jaxtrade.agents.ppo.policy import policy_from_spec
from jaxtrade.agents.ppo.update import TrainState
from jaxtrade.models import action_head, make_model, model_config_dict

# Health metrics: for logs, never for model selection.
DIAGNOSTICS = ("policy_loss", "value_loss", "critic_value_loss", "entropy", "approx_kl", "clip_frac",
               "explained_variance", "grad_norm", "loss", "any_nonfinite")


class PPOAgent(DeviceAgent):
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
        super().__init__()

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
        init_key, reset_key, run_key = jax.random.split(key, 3)
        train_state = self.init_train_state(init_key, env_params, hparams)
        # Global env indices: on multi-process runs this process holds envs first .. first + n_global.
        env_state, obs = self._reset_envs(reset_key, env_params, n_dev, first)
        hidden = jax.tree.map(lambda x: x.reshape((n_dev, n_envs) + x.shape[1:]),
                              self.model.initialize_carry(n_dev * n_envs))
        done = jnp.zeros((n_dev, n_envs), bool)
        stack = lambda x: jnp.broadcast_to(x, (n_dev,) + jnp.shape(x))
        hparams = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hparams)
        return iteration_lib.Carry(jax.tree.map(stack, train_state), env_state, obs, hidden, done,
                                   stack(run_key), jax.tree.map(stack, hparams))

    # ITERATIONS
    def iteration_kwargs(self) -> dict:
        return dict(env=self.env, model=self.model, opt=self.opt, hp=self.hp, discrete=self.discrete)

    # MODEL
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
