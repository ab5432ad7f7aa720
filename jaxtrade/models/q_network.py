"""`QNetwork`: the shared encoder -> a memoryless core -> action values over discrete actions.

    net = make_q_network(model_config, action_spec, dueling=False)
    q = net.apply({"params": params}, obs)          # obs leaves [*batch, ...] -> float32 [*batch, A]
    q = mask_q(q, obs)                               # disallowed actions at MASKED_LOGIT

1. The encoder is the very module `make_model` builds for the same `model` config
   (`actor_critic.encoder_of`: mlp, clstm or cnn_lstm with the same fields), under the same name, so
   a pretrained or transplanted encoder fits both networks.
2. Replay holds single transitions, not sequences, so the core is memoryless. `model.core = "mlp"`
   is a Dense -> ReLU stack; a recurrent core ("gru", "lstm", the default) runs ONE step from its
   zero state for every observation: a gated feedforward layer with the actor-critic's core
   parameter tree, and no memory (an agent that needs memory is not a replay agent).
3. Parameter tree (top level): `encoder`, `core`, then `q` (Q [A]) or, dueling, `q_value` (V [])
   and `q_adv` (advantages [A]) with Q = V + A - mean over all actions of A. Each head is the
   models' usual trunk (Dense -> ReLU -> LayerNorm, `head_layers` of them) and a linear output:
   `PolicyHead`'s logits for the [A] outputs (small orthogonal init: Q starts near 0),
   `ValueHead` for V.
4. The network returns every action's value; `mask_q` applies obs["action_mask"] (where the env has
   one) for acting and for the target's maximum, with the finite `MASKED_LOGIT` of the actor-critic.
"""

from __future__ import annotations

from collections.abc import Mapping

import flax.linen as nn
import jax.numpy as jnp

from jaxtrade.models.actor_critic import MASKED_LOGIT, encoder_of
from jaxtrade.models.cores import CoreStep, initialize_core_carry
from jaxtrade.models.factory import action_head, make_model
from jaxtrade.models.heads import PolicyHead, ValueHead


class QNetwork(nn.Module):
    action_dim: int
    encoder: nn.Module                 # encoder_of(the actor-critic of the same model config)
    core_type: str = "mlp"             # gru | lstm: one step from the zero state (module docstring)
    hidden_dim: int = 256
    n_layers: int = 2
    head_layers: int = 1
    compute_dtype: str = "float32"
    dueling: bool = False

    def setup(self):
        dtype = jnp.dtype(self.compute_dtype)
        self.core = CoreStep(self.core_type, self.hidden_dim, self.n_layers, dtype)
        if self.dueling:
            self.q_value = ValueHead(self.hidden_dim, self.head_layers, dtype)
            self.q_adv = PolicyHead(self.action_dim, True, self.hidden_dim, self.head_layers, dtype=dtype)
        else:
            self.q = PolicyHead(self.action_dim, True, self.hidden_dim, self.head_layers, dtype=dtype)

    def __call__(self, obs, *, train: bool = False):
        """obs leaves [*batch, ...] -> Q float32 [*batch, A] (unmasked)."""
        x = self.encoder(obs, train=train)
        zero = initialize_core_carry(self.core_type, self.hidden_dim, self.n_layers, x.shape[:-1])
        _, x = self.core(zero, (x, jnp.zeros(x.shape[:-1], bool)))
        if not self.dueling:
            return self.q(x).logits
        adv = self.q_adv(x).logits
        return self.q_value(x)[..., None] + adv - jnp.mean(adv, axis=-1, keepdims=True)


def mask_q(q, obs):
    """Q [..., A] with the actions outside obs["action_mask"] (bool [..., A]) at MASKED_LOGIT; unchanged
    where the observation has no mask. An argmax or max over it sees allowed actions only."""
    mask = obs.get("action_mask") if isinstance(obs, Mapping) else None
    if mask is None:
        return q
    return jnp.where(mask.astype(bool), q, jnp.asarray(MASKED_LOGIT, q.dtype))


def make_q_network(model_config: Mapping, action_spec, *, dueling: bool = False) -> QNetwork:
    """The `QNetwork` of a `model` config (ConfigDict or dict; the keys and defaults of `make_model`)
    for a discrete `action_spec`. ValueError for continuous actions."""
    n, discrete = action_head(action_spec)
    if not discrete:
        raise ValueError(f"a Q network needs discrete actions; the action spec is {action_spec}")
    net = make_model(model_config, action_spec)          # resolves the config: keys, defaults
    return QNetwork(n, encoder_of(net), net.core_type, net.hidden_dim, net.n_layers, net.head_layers,
                    str(jnp.dtype(net.compute_dtype)), bool(dueling))
