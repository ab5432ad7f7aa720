"""`ActorCritic`: encoder -> recurrent core -> separate policy and value heads.

Parameter tree (top level): `encoder`, `core`, `policy`, `value`; optimizers and freezing address
parts by these names. Time-major: obs leaves `[T, *batch, ...]`, done `[T, *batch]`; the carry has
leaves `[*batch, H]`. `reset[t]` (the `done` flag of the step that produced obs[t]) zeroes the core
state before obs[t] is processed, so a new episode always starts from `initialize_carry`.

Masked discrete actions: where the observation has an "action_mask" (bool [..., A], the env's
actions allowed now), the logits of disallowed actions are set to `MASKED_LOGIT`, so sampling,
the mode, log-probabilities and the entropy are those of the distribution over allowed actions only
(a finite constant, not -inf, keeps the entropy's 0 * log 0 terms at 0 and every gradient finite).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxtrade.models.cores import ScannedCore, initialize_core_carry
from jaxtrade.models.encoders import CLSTMEncoder, CNNLSTMEncoder, MLPEncoder
from jaxtrade.models.heads import PolicyHead, ValueHead

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
MASKED_LOGIT = -1e9
ENCODERS = ("mlp", "clstm", "cnn_lstm")


def encoder_of(net: ActorCritic):
    """The encoder module `net` builds (called in `ActorCritic.setup`, and by supervised pretraining,
    which trains this very module under the name "encoder", so its parameter tree is the network's)."""
    dtype = _DTYPES.get(net.compute_dtype, net.compute_dtype)
    if net.encoder_type == "mlp":
        return MLPEncoder(net.hidden_dim, net.encoder_layers, net.dropout, dtype)
    if net.encoder_type == "clstm":
        return CLSTMEncoder(net.hidden_dim, net.n_heads, net.dropout, dtype)
    if net.encoder_type == "cnn_lstm":
        return CNNLSTMEncoder(net.hidden_dim, net.n_heads, tuple(net.conv_filters), net.conv_kernel,
                              net.dropout, dtype)
    raise ValueError(f"unknown encoder {net.encoder_type!r}; expected one of {ENCODERS}")


def mask_logits(dist, obs):
    """`dist` with the logits of actions outside obs["action_mask"] at MASKED_LOGIT (discrete only;
    unchanged where the observation has no mask)."""
    mask = obs.get("action_mask") if isinstance(obs, dict) else None
    if mask is None or not hasattr(dist, "logits"):
        return dist
    logits = jnp.where(mask.astype(bool), dist.logits, jnp.asarray(MASKED_LOGIT, dist.logits.dtype))
    return dist.replace(logits=logits)


class ActorCritic(nn.Module):
    action_dim: int
    discrete: bool = True
    encoder_type: str = "mlp"          # mlp | clstm | cnn_lstm
    core_type: str = "gru"             # gru | lstm | mlp (memoryless control)
    hidden_dim: int = 256
    n_layers: int = 2                  # core layers
    encoder_layers: int = 2            # MLP encoder layers
    head_layers: int = 1
    dropout: float = 0.1               # encoder dropout, active only with train=True (no agent
                                       # passes it: rollouts and updates run one policy)
    n_heads: int = 8                   # clstm / cnn_lstm attention heads
    conv_filters: tuple = (32, 64)     # cnn_lstm: filters of each 1-D convolution over the window
    conv_kernel: int = 3               # cnn_lstm: their kernel size (rows)
    init_log_std: float = -0.5         # continuous policies
    compute_dtype: Any = jnp.float32   # parameters stay float32

    def setup(self):
        dtype = _DTYPES.get(self.compute_dtype, self.compute_dtype)
        self.encoder = encoder_of(self)
        self.core = ScannedCore(self.core_type, self.hidden_dim, self.n_layers, dtype)
        self.policy = PolicyHead(self.action_dim, self.discrete, self.hidden_dim, self.head_layers,
                                 self.init_log_std, dtype)
        self.value = ValueHead(self.hidden_dim, self.head_layers, dtype)

    def initialize_carry(self, batch_shape=()) -> tuple:
        """Zero core state, leaves [*batch_shape, hidden_dim] float32 (no parameters needed)."""
        return initialize_core_carry(self.core_type, self.hidden_dim, self.n_layers, batch_shape)

    def features(self, carry, obs, reset, *, train: bool = False):
        """-> (carry after the last step, core outputs [T, *batch, H])."""
        x = self.encoder(obs, train=train)
        return self.core(carry, (x, reset))

    def heads(self, features):
        """core outputs [..., H] -> (distribution, value [...])."""
        return self.policy(features), self.value(features)

    def value_from_features(self, features):
        return self.value(features)

    def __call__(self, carry, obs, reset, *, train: bool = False):
        """-> (carry, distribution over actions [T, *batch], value [T, *batch])."""
        carry, feats = self.features(carry, obs, reset, train=train)
        dist, value = self.heads(feats)
        return carry, mask_logits(dist, obs), value
