"""`make_model(model_config, action_spec)`: the network a model config describes, from the action
spec alone (never from an env object), so a saved model can be rebuilt with no env around."""

from __future__ import annotations

from collections.abc import Mapping

import ml_collections
from ml_collections import config_dict

from jaxtrade.envs.base import ContinuousSpec, DiscreteSpec
from jaxtrade.models.actor_critic import ActorCritic, encoder_of

# model config keys -> ActorCritic fields (defaults where a key is absent); `continuous_dist` is read
# by the agents (how a Gaussian sample becomes an env action) and `encoder_init` (a pretrained
# encoder artifact to start from) by the training loop, not by the network.
_FIELDS = {"encoder": "encoder_type", "core": "core_type", "hidden_dim": "hidden_dim",
           "n_layers": "n_layers", "encoder_layers": "encoder_layers", "head_layers": "head_layers",
           "dropout": "dropout", "n_heads": "n_heads", "conv_filters": "conv_filters",
           "conv_kernel": "conv_kernel", "init_log_std": "init_log_std", "compute_dtype": "compute_dtype"}
_AGENT_KEYS = ("continuous_dist", "encoder_init")
# The ActorCritic fields that shape each encoder's parameter tree (what a transplant must match).
_ENCODER_SHAPE = {"mlp": ("hidden_dim", "encoder_layers"), "clstm": ("hidden_dim", "n_heads"),
                  "cnn_lstm": ("hidden_dim", "n_heads", "conv_filters", "conv_kernel")}


def default_model_config() -> ml_collections.ConfigDict:
    """The `model` section every agent shares: encoder, core, heads and their sizes."""
    return ml_collections.ConfigDict(dict(
        encoder="mlp",               # mlp | clstm | cnn_lstm
        core="gru",                  # gru | lstm | mlp (memoryless control)
        hidden_dim=256,
        n_layers=2,                  # recurrent core layers
        encoder_layers=2,            # MLP encoder layers
        head_layers=1,               # hidden layers of each head
        dropout=0.1,                 # encoder dropout in regression passes (pretraining, DQN's online Q);
                                     # never in actor-critic passes (ppo/update.py)
        n_heads=8,                   # clstm / cnn_lstm attention heads
        conv_filters=(32, 64),       # cnn_lstm: filters of its 1-D convolutions, in order
        conv_kernel=3,               # cnn_lstm: their kernel size (rows)
        encoder_init=config_dict.placeholder(str),  # a pretrained encoder artifact to start from
        compute_dtype="float32",     # float32 | bfloat16; parameters stay float32
        init_log_std=-0.5,           # continuous actions: initial log std of the Gaussian
        continuous_dist="gaussian",  # gaussian | logistic_normal (env sees softmax of the Gaussian sample)
    ))


def model_config_dict(model_config) -> dict:
    """A plain dict of a model config (ConfigDict or mapping); unknown keys raise ValueError."""
    d = dict(model_config.to_dict() if hasattr(model_config, "to_dict") else model_config)
    unknown = sorted(set(d) - set(_FIELDS) - set(_AGENT_KEYS))
    if unknown:
        raise ValueError(f"unknown model config key(s) {['model.' + k for k in unknown]}; known: "
                         f"{sorted(set(_FIELDS) | set(_AGENT_KEYS))}")
    return d


def action_head(action_spec) -> tuple[int, bool]:
    """(action_dim, discrete) of an action spec."""
    if isinstance(action_spec, DiscreteSpec):
        return int(action_spec.n), True
    if isinstance(action_spec, ContinuousSpec):
        if len(action_spec.shape) != 1:
            raise ValueError(f"continuous actions must have shape [A]; got {action_spec.shape}")
        return int(action_spec.shape[0]), False
    raise TypeError(f"action_spec must be a DiscreteSpec or ContinuousSpec; got {action_spec!r}")


def make_model(model_config: Mapping, action_spec) -> ActorCritic:
    """The `ActorCritic` described by `model_config` (ConfigDict or dict) for `action_spec`."""
    d = model_config_dict(model_config)
    action_dim, discrete = action_head(action_spec)
    kwargs = {field: d[key] for key, field in _FIELDS.items() if key in d}
    if "encoder_layers" not in d and "n_layers" in d:
        kwargs["encoder_layers"] = d["n_layers"]      # the first slice's default
    if "conv_filters" in kwargs:                      # JSON and the command line give lists
        kwargs["conv_filters"] = tuple(int(f) for f in kwargs["conv_filters"])
    return ActorCritic(action_dim=action_dim, discrete=discrete, **kwargs)


def make_encoder(model_config: Mapping):
    """The encoder module `make_model(model_config, ...)` builds (same class, same fields), alone:
    what supervised pretraining trains, under the name "encoder"."""
    return encoder_of(make_model(model_config, DiscreteSpec(2)))


def encoder_config(model_config: Mapping) -> dict:
    """{"encoder": type, and the resolved settings that shape that encoder's parameter tree} of a model
    config (defaults filled in), e.g. {"encoder": "clstm", "hidden_dim": 128, "n_heads": 8}: two
    configs whose encoder_config is equal build encoders with the same parameter tree."""
    net = make_model(model_config, DiscreteSpec(2))
    if net.encoder_type not in _ENCODER_SHAPE:
        raise ValueError(f"unknown model.encoder {net.encoder_type!r}; expected one of "
                         f"{sorted(_ENCODER_SHAPE)}")
    out = {"encoder": net.encoder_type}
    for field in _ENCODER_SHAPE[net.encoder_type]:
        v = getattr(net, field)
        out[field] = [int(x) for x in v] if isinstance(v, tuple) else v
    return out
