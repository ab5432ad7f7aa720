"""Networks of the continuous-action off-policy agents (DDPG, TD3, SAC): an actor and a critic ensemble.

    actor, critic = make_actor_critic_q(model_config, action_spec, n_critics=2, stochastic=True)
    mu, log_std = actor.apply({"params": p["actor"]}, obs)     # pre-tanh [*batch, A] each
    q = critic.apply({"params": p["critic"]}, obs, action)     # action [*batch, A] -> Q [n, *batch]

1. Both read the observation through the very encoder `make_model` builds for the same `model`
   config (`actor_critic.encoder_of`), under the name "encoder", then a memoryless core as in
   `q_network.py` (replay holds single transitions: a recurrent core runs one step from its zero
   state), then the models' heads.
2. The actor's output is PRE-squash: the agents apply tanh (`agents/offpolicy.py`). A deterministic
   actor (DDPG, TD3) has no `log_std` head and returns log_std = 0; a stochastic one (SAC) has a
   state-dependent `log_std` head squashed into [LOG_STD_MIN, LOG_STD_MAX].
3. The critic is `n_critics` independent Q networks (`CriticEnsemble`: every leaf of params["critic"]
   is [n_critics, ...], applied under `jax.vmap`), each Q(s, a) = head(concat(core(encoder(s)), a)).
4. The actor's `mu` head is the policy head's small orthogonal init (actions start near 0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxtrade.models.actor_critic import encoder_of
from jaxtrade.models.cores import CoreStep, initialize_core_carry
from jaxtrade.models.factory import action_head, make_model
from jaxtrade.models.heads import PolicyHead, ValueHead

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def _features(encoder, core, core_type, hidden_dim, n_layers, obs):
    x = encoder(obs, train=False)
    zero = initialize_core_carry(core_type, hidden_dim, n_layers, x.shape[:-1])
    return core(zero, (x, jnp.zeros(x.shape[:-1], bool)))[1]


class ContinuousActor(nn.Module):
    action_dim: int
    encoder: nn.Module
    core_type: str = "mlp"
    hidden_dim: int = 256
    n_layers: int = 2
    head_layers: int = 1
    compute_dtype: str = "float32"
    stochastic: bool = False

    def setup(self):
        dtype = jnp.dtype(self.compute_dtype)
        self.core = CoreStep(self.core_type, self.hidden_dim, self.n_layers, dtype)
        self.mu = PolicyHead(self.action_dim, True, self.hidden_dim, self.head_layers, dtype=dtype)
        if self.stochastic:
            self.log_std = PolicyHead(self.action_dim, True, self.hidden_dim, self.head_layers, dtype=dtype)

    def __call__(self, obs):
        """obs leaves [*batch, ...] -> (mu, log_std) float32 [*batch, A], both before the tanh."""
        x = _features(self.encoder, self.core, self.core_type, self.hidden_dim, self.n_layers, obs)
        mu = self.mu(x).logits
        if not self.stochastic:
            return mu, jnp.zeros_like(mu)
        raw = jnp.tanh(self.log_std(x).logits)
        return mu, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (raw + 1.0)


class QCritic(nn.Module):
    encoder: nn.Module
    core_type: str = "mlp"
    hidden_dim: int = 256
    n_layers: int = 2
    head_layers: int = 1
    compute_dtype: str = "float32"

    @nn.compact
    def __call__(self, obs, action):
        dtype = jnp.dtype(self.compute_dtype)
        core = CoreStep(self.core_type, self.hidden_dim, self.n_layers, dtype, name="core")
        x = _features(self.encoder, core, self.core_type, self.hidden_dim, self.n_layers, obs)
        x = jnp.concatenate([x.astype(jnp.float32), action.astype(jnp.float32)], axis=-1)
        return ValueHead(self.hidden_dim, self.head_layers, dtype, name="q")(x)


@dataclasses.dataclass(frozen=True)
class CriticEnsemble:
    """`n_critics` QCritics with their own parameters (leaves [n_critics, ...]) -> Q [n_critics, *batch].

    `init` draws the members one by one and stacks them rather than `nn.vmap`-ing the init: a vmapped
    orthogonal initializer (the GRU's recurrent kernels, the heads' outputs) is a batched QR, whose
    jaxlib CPU kernel can deadlock on a 2-thread host pool (agents/base.py, init_population; seen here
    with model.core=gru: the first iteration never returned). `apply` vmaps over the members."""

    critic: QCritic
    n_critics: int

    def init(self, key, obs, action) -> dict:
        members = [self.critic.init(k, obs, action)["params"] for k in jax.random.split(key, self.n_critics)]
        return {"params": jax.tree.map(lambda *x: jnp.stack(x), *members)}

    def apply(self, variables, obs, action):
        return jax.vmap(lambda p: self.critic.apply({"params": p}, obs, action))(variables["params"])


def make_actor_critic_q(model_config: Mapping, action_spec, *, n_critics: int, stochastic: bool):
    """(ContinuousActor, CriticEnsemble) of a `model` config (the keys and defaults of `make_model`) for
    a continuous `action_spec` [A]. ValueError for discrete actions."""
    n, discrete = action_head(action_spec)
    if discrete:
        raise ValueError(f"an actor with a Q critic needs continuous actions; the action spec is "
                         f"{action_spec}")
    net = make_model(model_config, action_spec)
    common = dict(core_type=net.core_type, hidden_dim=net.hidden_dim, n_layers=net.n_layers,
                  head_layers=net.head_layers, compute_dtype=str(jnp.dtype(net.compute_dtype)))
    actor = ContinuousActor(n, encoder_of(net), stochastic=bool(stochastic), **common)
    critic = CriticEnsemble(QCritic(encoder_of(net), **common), int(n_critics))
    return actor, critic
