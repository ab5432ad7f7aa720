"""What the continuous-action off-policy agents (DDPG and TD3 in `agents/td3`, SAC in `agents/sac`) share:
the action mapping, the tanh-Gaussian, Polyak targets, collection into the replay buffer, the
iteration around an algorithm's gradient step, the policy rebuilt from params, and the agent class.

1. Actions. The actor's output u [A] is squashed, a = tanh(u) in [-1, 1]^A: the buffer and the critics
   see a. The env sees `to_env_action(a, spec)`: for a bounded `ContinuousSpec` the affine map onto
   [low, high]; for an unbounded one (the portfolio env's "weights" logits, whose softmax gives the
   target weights over N assets + cash, the same logits PPO's Gaussian samples give it),
   UNBOUNDED_SCALE * a. With logits in [-4, 4] the softmax reaches both equal weights and, for 21
   entries, 99.99% in one asset. The single-instrument env's "exposure" space is bounded (the
   smallest and largest of env.positions): the affine map gives its target exposure.
2. SAC's policy is the tanh-Gaussian a = tanh(mu + std * eps), whose log-density is the Gaussian's
   minus sum log(1 - tanh(u)^2), computed as 2 (log 2 - u - softplus(-2u)) (no log of 0 at
   saturation). TD3 explores with a = clip(tanh(mu) + sigma * eps, -1, 1).
3. Targets: target <- tau * online + (1 - tau) * target (`polyak`), over the whole params tree.
4. Iteration (per device, as DQN's, agents/dqn/iteration.py for the keys): collect n_steps of the
   device's envs with the exploring policy (`dqn.collect_with`: DQN's collection, given this acting
   function and `to_env_action`), n-step returns (`dqn.nstep_returns`) into the buffer,
   then `updates_per_iteration` = round(utd_ratio * n_envs * n_steps) gradient steps, each on its own
   sample of this device's buffer, once it holds `learning_starts` transitions. The algorithm gives
   `grad_step(params, target, opt_state, n_updates, batch, key, hparams, axis_name)`; it pmeans its
   gradients over the devices.
5. Policy from params alone: `policy_from_spec` (SAC's actor has a `log_std` head, TD3's not).
   act (deterministic): the env action of tanh(mu); stochastic: SAC samples its tanh-Gaussian; a
   deterministic actor stays deterministic (exploration noise is training-time only, like DQN's
   epsilon). dist -> {"mean": that deterministic env action [A], "log_std": DIST_LOG_STD [A]}: what the
   ensemble's weighted mode reads (it averages the members' means, then applies the identity
   `env_action` of continuous_dist="gaussian", which these agents require); the log_std is a point
   mass, so a stochastic ensemble picks a member by weight and takes its deterministic action.
6. `OffPolicyAgent` is `DQNAgent` (agents/dqn/agent.py) with its buffers, placement, warm starts and
   checkpoints (the buffer is in `latest` unless `<name>.save_buffer=False`), given its own networks,
   optimizer state, transition, iteration and policy.
7. Config: every section starts from `common_section()` and its static hyperparameters from
   `OffPolicyHParams`; the sizes are checked by DQN's `replay_checks`, errors naming `<name>.<key>`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import jax
import jax.numpy as jnp
from jax.tree_util import Partial

from jaxtrade.agents import replay as replay_lib
from jaxtrade.agents.base import action_spec_of, static_kwargs
from jaxtrade.agents.dqn.agent import DQNAgent
from jaxtrade.agents.dqn.collect import Transition, collect_with
from jaxtrade.agents.dqn.config import replay_checks, replay_sizes
from jaxtrade.agents.dqn.iteration import Carry, TrainState
from jaxtrade.agents.ppo.update import all_finite
from jaxtrade.envs.base import ContinuousSpec, Policy
from jaxtrade.models import model_config_dict
from jaxtrade.models.continuous import make_actor_critic_q

UNBOUNDED_SCALE = 4.0
DIST_LOG_STD = -20.0


# ACTIONS
def to_env_action(a, action_spec: ContinuousSpec):
    """Squashed actions a [..., A] in [-1, 1] -> what the env receives (module docstring, 1)."""
    low, high = float(action_spec.low), float(action_spec.high)
    if math.isfinite(low) and math.isfinite(high):
        return low + 0.5 * (a + 1.0) * (high - low)
    return UNBOUNDED_SCALE * a


def log1m_tanh_sq(u):
    """log(1 - tanh(u)^2), stable for large |u|."""
    return 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))


def tanh_gaussian(mu, log_std, eps):
    """mu, log_std, eps [..., A] (eps ~ N(0, 1)) -> (a = tanh(mu + std eps) [..., A], log-density of a
    [...])."""
    u = mu + jnp.exp(log_std) * eps
    gauss = -0.5 * jnp.square(eps) - log_std - 0.5 * jnp.log(2.0 * jnp.pi)
    return jnp.tanh(u), jnp.sum(gauss - log1m_tanh_sq(u), axis=-1)


def env_normals(keys, shape):
    """keys [B] (one per env) -> standard normals [B, *shape], env b's drawn from keys[b] alone."""
    return jax.vmap(lambda k: jax.random.normal(k, shape))(keys)


def polyak(online, target, tau):
    """tau * online + (1 - tau) * target, leaf by leaf (same trees)."""
    return jax.tree.map(lambda p, t: tau * p + (1.0 - tau) * t, online, target)


def critic_loss(q, target):
    """q [n_critics, B], target [B] -> (sum over critics of the mean squared error, metrics)."""
    loss = jnp.sum(jnp.mean(jnp.square(q - target[None]), axis=-1))
    return loss, {"q_mean": jnp.mean(q), "td_error": jnp.mean(jnp.abs(target[None] - q))}


# COLLECTION
def collect(env, act, env_state, obs, env_params, key, *, n_steps: int, env_index, gamma, n_step: int,
            action_spec):
    """`dqn.collect_with` acting with `act(keys [B], obs [B, ...]) -> squashed actions [B, A]`, the env
    given `to_env_action` of them, the buffer the squashed ones (`Transition` leaves [n_steps * B, ...])."""
    return collect_with(env, act, env_state, obs, env_params, key, n_steps=n_steps, env_index=env_index,
                        gamma=gamma, n_step=n_step, env_action=lambda a: to_env_action(a, action_spec))


# CONFIG
def common_section() -> dict:
    """The keys (and defaults) every continuous off-policy section (ddpg, td3, sac) starts from."""
    return dict(
        n_envs=16,                   # environments per device
        n_steps=32,                  # env steps per environment and iteration
        buffer_size=65536,           # replay capacity in transitions, per device (and population member)
        batch_size=256,              # transitions per gradient step, per device (gradients pmean-ed)
        learning_starts=2048,        # transitions in a device's buffer before the first gradient step
        utd_ratio=0.0625,            # gradient steps per env step collected
        n_step=1,                    # n-step returns (dqn.nstep_returns), cut at episode ends
        gamma=0.99,
        actor_lr=3e-4,
        critic_lr=3e-4,
        tau=0.005,                   # Polyak: target <- tau * online + (1 - tau) * target
        n_critics=2,                 # the target takes their minimum
        max_grad_norm=10.0,
        adam_eps=1e-5,
        save_buffer=True,            # the buffer is part of `latest` (exact resume)
        iterations_per_call=1,
    )


@dataclasses.dataclass(frozen=True)
class OffPolicyHParams:
    """The static hyperparameters every continuous off-policy agent has (its section's name included)."""

    name: str = ""
    n_envs: int = 16
    n_steps: int = 32
    buffer_size: int = 65536
    batch_size: int = 256
    learning_starts: int = 2048
    utd_ratio: float = 0.0625
    n_step: int = 1
    n_critics: int = 2
    max_grad_norm: float = 10.0
    adam_eps: float = 1e-5
    save_buffer: bool = True
    iterations_per_call: int = 1
    frozen: tuple[str, ...] = ()

    @classmethod
    def from_section(cls, config, name: str, traced_cls):
        """From `config.<name>` (traced keys left to `traced_cls`; an unknown key raises); checks sizes."""
        hp = cls(name=name, **static_kwargs(cls, traced_cls, config[name], name=name, exclude=("name",)))
        derived_sizes(hp, name)
        if hp.n_critics < 1:
            raise ValueError(f"{name}.n_critics={hp.n_critics} must be >= 1")
        return hp


def derived_sizes(hp, name: str) -> dict:
    """Gradient steps per iteration; checks the sizes of section `name` (`dqn.replay_checks`: ValueError
    naming its keys) and never writes the config."""
    return replay_sizes(hp, replay_checks(hp, name))


def check_ranges(values: dict, ranges: dict, name: str) -> None:
    for key, (ok, rule) in ranges.items():
        if not ok:
            raise ValueError(f"{name}.{key}={values[key]} must be {rule}")


# ITERATION
def train_iteration(carry: Carry, env_params, *, env, explore, grad_step, metric_names, hp, name: str,
                    action_spec, axis_name=None):
    """One iteration on one device's envs (module docstring, 4) -> (Carry, metrics of scalars).
    explore(params, hparams, keys [B], obs) -> squashed actions [B, A]."""
    device = 0 if axis_name is None else jax.lax.axis_index(axis_name)
    env_index = device * hp.n_envs + jnp.arange(hp.n_envs, dtype=jnp.int32)
    key, collect_key, update_key = jax.random.split(carry.key, 3)
    ts, h = carry.train_state, carry.hparams
    transitions, (env_state, obs), stats = collect(
        env, functools.partial(explore, ts.params, h), carry.env_state, carry.obs, env_params, collect_key,
        n_steps=hp.n_steps, env_index=env_index, gamma=h.gamma, n_step=hp.n_step, action_spec=action_spec)
    replay = replay_lib.add(carry.replay, transitions)
    sizes = derived_sizes(hp, name)

    def step(c, u):
        sample_key, step_key = jax.random.split(jax.random.fold_in(jax.random.fold_in(update_key, u), device))
        batch = replay_lib.sample(replay, sample_key, hp.batch_size)
        return grad_step(*c, batch, step_key, h, axis_name)

    def learn(c):
        c, m = jax.lax.scan(step, c, jnp.arange(sizes["updates_per_iteration"]))
        return c, {k: jnp.mean(v) if k != "nonfinite" else jnp.any(v) for k, v in m.items()}

    def wait(c):
        return c, dict({k: jnp.zeros((), jnp.float32) for k in metric_names}, nonfinite=jnp.array(False))

    c = (ts.params, ts.target_params, ts.opt_state, ts.updates)
    (params, target, opt_state, n_updates), metrics = jax.lax.cond(
        replay.size >= sizes["learning_starts"], learn, wait, c)
    metrics["any_nonfinite"] = metrics.pop("nonfinite") | ~all_finite(params)
    metrics["buffer_size"] = replay.size.astype(jnp.float32)
    metrics["updates"] = n_updates.astype(jnp.float32)
    n_devices = 1 if axis_name is None else jax.lax.psum(1, axis_name)
    if axis_name is not None:
        stats = jax.lax.psum(stats, axis_name)
    metrics.update(stats)
    metrics["env_steps"] = jnp.asarray(hp.n_steps * hp.n_envs * n_devices, jnp.float32)
    ts = TrainState(params, target, opt_state, ts.step + 1, n_updates)
    return Carry(ts, env_state, obs, replay, key, h), metrics


# POLICY
@functools.lru_cache(maxsize=64)
def _policy_fns(model_json: str, action_spec, stochastic: bool, deterministic: bool):
    actor, _ = make_actor_critic_q(json.loads(model_json), action_spec, n_critics=1, stochastic=stochastic)

    def init():
        return ()

    def dist(params, carry, obs):
        batched = jax.tree.map(lambda x: jnp.asarray(x)[None], obs)
        mu, _ = actor.apply({"params": params}, batched)
        mean = to_env_action(jnp.tanh(mu[0]), action_spec)
        return {"mean": mean, "log_std": jnp.full_like(mean, DIST_LOG_STD)}, carry

    def act(params, key, carry, obs):
        if deterministic or not stochastic:
            d, carry = dist(params, carry, obs)
            return d["mean"], carry
        batched = jax.tree.map(lambda x: jnp.asarray(x)[None], obs)
        mu, log_std = actor.apply({"params": params}, batched)
        a, _ = tanh_gaussian(mu[0], log_std[0], jax.random.normal(key, mu.shape[1:]))
        return to_env_action(a, action_spec), carry

    return init, act, dist


def policy_from_spec(model_config, action_spec, params, deterministic: bool = True) -> Policy:
    """params: one (unreplicated) copy of the agent's params ({"actor", "critic", ...}) or the actor's
    alone. Policy.act(key, carry, obs) -> (float32 env action [A], carry); Policy.dist (module
    docstring, 5)."""
    if isinstance(params, dict) and set(params) == {"params"}:
        params = params["params"]
    actor = params["actor"] if "actor" in params else params
    model_json = json.dumps(model_config_dict(model_config), sort_keys=True, default=list)
    init, act, dist = _policy_fns(model_json, action_spec, "log_std" in actor, bool(deterministic))
    actor = jax.tree.map(jnp.asarray, actor)
    return Policy(Partial(init), Partial(act, actor), Partial(dist, actor))


# AGENT
class OffPolicyAgent(DQNAgent):
    """DQNAgent's buffers, placement and checkpoints (module docstring, 6) around an actor and critics.
    A subclass sets name, diagnostics, static_hparams, traced_hparams, `stochastic`, `metric_names`,
    `make_optimizer(hp)`, `learning_rates(hparams)`, `init_extra_params(hp)` and `grad_step`/`explore`."""

    stochastic = False
    metric_names: tuple[str, ...] = ()

    def __init__(self, env, hp, hparams, model_config: dict, action_spec, obs_spec=None):
        self.env = env
        self.hp = hp
        self.hparams = hparams
        self.model_config = model_config
        self.action_spec = action_spec
        self.obs_spec = obs_spec
        self.action_dim = int(action_spec.shape[0])
        self.actor, self.critic = make_actor_critic_q(model_config, action_spec, n_critics=hp.n_critics,
                                                      stochastic=self.stochastic)
        self.opt = self.make_optimizer(hp)
        super(DQNAgent, self).__init__()

    def example_transition(self, obs) -> Transition:
        scalar = jax.ShapeDtypeStruct((), jnp.float32)
        return Transition(obs, jax.ShapeDtypeStruct((self.action_dim,), jnp.float32), scalar, scalar, obs)

    def init_params(self, key, env_params):
        actor_key, critic_key = jax.random.split(key)
        obs, _ = self.env.reset(jax.random.key(0), env_params)
        obs = jax.tree.map(lambda x: jnp.asarray(x)[None], obs)
        params = {"actor": self.actor.init(actor_key, obs)["params"],
                  "critic": self.critic.init(critic_key, obs, jnp.zeros((1, self.action_dim)))["params"]}
        return dict(params, **self.init_extra_params())

    def init_extra_params(self) -> dict:
        return {}

    def init_train_state(self, key, env_params, hparams=None):
        hparams = self.hparams if hparams is None else hparams
        params = self.init_params(key, env_params)
        target = jax.tree.map(lambda x: jnp.array(x, copy=True), params)
        zero = jnp.zeros((), jnp.int32)
        return TrainState(params, target, self.opt.init(params, self.learning_rates(hparams)), zero, zero)

    def with_encoder(self, state, encoder_params):
        """`state` with the actor's encoder and every critic's encoder replaced by `encoder_params`
        (one member's, unreplicated); ValueError unless its tree and shapes are the actor encoder's."""
        params = self.params(state)
        lead = jnp.ndim(state.train_state.step) - 1
        current = params["actor"]["encoder"]
        expected = jax.tree.map(lambda x: tuple(jnp.shape(x)[lead:]), current)
        got = jax.tree.map(lambda x: tuple(jnp.shape(x)), encoder_params)
        if jax.tree.structure(current) != jax.tree.structure(encoder_params) or expected != got:
            raise ValueError(f"with_encoder: the encoder params do not fit this network's encoder "
                             f"(expected shapes {expected}, got {got})")
        critic = params["critic"]                  # leaves [n_critics, ...] ([K, n_critics, ...])
        critic_enc = jax.tree.map(lambda c, x: jnp.broadcast_to(x, c.shape), critic["encoder"],
                                  encoder_params)
        new = dict(params, actor=dict(params["actor"], encoder=encoder_params),
                   critic=dict(critic, encoder=critic_enc))
        return self.with_params(state, new)

    def iteration_kwargs(self) -> dict:
        return dict(env=self.env, explore=self.explore, grad_step=self.grad_step,
                    metric_names=self.metric_names,
                    hp=self.hp, name=self.name, action_spec=self.action_spec)

    train_iteration = staticmethod(train_iteration)

    def policy(self, params, deterministic: bool = True):
        return policy_from_spec(self.model_config, self.action_spec, params, deterministic)


def check_env(config, env, name: str):
    """(action_spec, model config dict) for a continuous-action agent; ValueError naming the key."""
    spec = action_spec_of(env)
    if not isinstance(spec, ContinuousSpec):
        raise ValueError(f"{name} needs continuous actions; the env has {spec} (for the portfolio env set "
                         "env.action_space=weights)")
    model_config = model_config_dict(config.model)
    dist = model_config.get("continuous_dist", "gaussian")
    if dist != "gaussian":
        raise ValueError(f"{name} maps tanh actions to the env itself (agents/offpolicy.py); "
                         f"model.continuous_dist must be 'gaussian', not {dist!r}")
    return spec, model_config
