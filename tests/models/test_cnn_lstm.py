"""The CNN-LSTM encoder, and `make_encoder` / `encoder_config`: the encoder pretraining trains is the
network's own (same parameter tree, same features)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.envs.base import DiscreteSpec
from jaxtrade.models import ActorCritic, CNNLSTMEncoder, encoder_config, make_encoder, make_model

T, B, W, D, S = 2, 3, 6, 5, 4


def _obs(key, lead=(T, B)):
    k1, k2 = jax.random.split(key)
    return {"window": jax.random.normal(k1, lead + (W, D)), "state": jax.random.normal(k2, lead + (S,))}


def test_cnn_lstm_param_tree_and_shapes():
    model = ActorCritic(action_dim=3, encoder_type="cnn_lstm", hidden_dim=8, n_heads=2, conv_filters=(4, 6),
                        conv_kernel=2, n_layers=1)
    obs, done = _obs(jax.random.key(0)), jnp.zeros((T, B), bool)
    params = model.init(jax.random.key(1), model.initialize_carry(B), obs, done)["params"]
    enc = params["encoder"]
    shapes = jax.tree.map(jnp.shape, enc)
    assert shapes["conv_0"] == {"kernel": (2, D, 4), "bias": (4,)}          # [kernel, in, filters]
    assert shapes["conv_1"] == {"kernel": (2, 4, 6), "bias": (6,)}
    lstm = next(v for k, v in shapes.items() if "LSTM" in k)
    assert lstm["ii"]["kernel"] == (6, 8) and lstm["hi"]["kernel"] == (8, 8)  # the LSTM reads the convs
    assert "attention" in enc and shapes["joint"]["kernel"] == (8 + S, 8)     # pooled + state
    carry, dist, value = model.apply({"params": params}, model.initialize_carry(B), obs, done)
    assert dist.logits.shape == (T, B, 3) and value.shape == (T, B)
    # Every key is read: the state and each window row change the features.
    feats = lambda o: model.apply({"params": params}, model.initialize_carry(B), o, done)[2]
    assert not np.allclose(feats(dict(obs, state=obs["state"] + 1.0)), value)
    assert not np.allclose(feats(dict(obs, window=obs["window"].at[..., 0, :].add(1.0))), value)


def test_cnn_lstm_window_must_be_present():
    with pytest.raises(KeyError, match="cnn_lstm encoder runs over obs\\['window'\\]"):
        CNNLSTMEncoder(8, 2, (4,)).init(jax.random.key(0), {"state": jnp.ones((2, S))})


@pytest.mark.parametrize("cfg", [
    dict(encoder="mlp", hidden_dim=8, n_layers=1),
    dict(encoder="clstm", hidden_dim=8, n_heads=2),
    dict(encoder="cnn_lstm", hidden_dim=8, n_heads=2, conv_filters=[4, 6], conv_kernel=2),   # lists: JSON
])
def test_make_encoder_is_the_networks_encoder(cfg):
    """`make_encoder(cfg)` initialized alone has the network's encoder tree, and with the network's
    encoder params computes the network's encoder features."""
    net = make_model(dict(cfg, dropout=0.0), DiscreteSpec(3))
    obs, done = _obs(jax.random.key(0)), jnp.zeros((T, B), bool)
    params = net.init(jax.random.key(1), net.initialize_carry(B), obs, done)["params"]
    enc = make_encoder(dict(cfg, dropout=0.0))
    alone = enc.init(jax.random.key(2), jax.tree.map(lambda x: x[0], obs))["params"]
    assert jax.tree.structure(alone) == jax.tree.structure(params["encoder"])
    assert jax.tree.map(jnp.shape, alone) == jax.tree.map(jnp.shape, params["encoder"])
    want = net.apply({"params": params}, obs, method=lambda m, o: m.encoder(o))
    np.testing.assert_allclose(enc.apply({"params": params["encoder"]}, obs), want, rtol=1e-6, atol=1e-6)


def test_encoder_config_names_what_shapes_the_tree():
    assert encoder_config(dict(encoder="clstm", hidden_dim=16, n_heads=4, encoder_layers=3)) == \
        {"encoder": "clstm", "hidden_dim": 16, "n_heads": 4}                 # encoder_layers: mlp only
    assert encoder_config(dict(encoder="mlp", n_layers=3)) == \
        {"encoder": "mlp", "hidden_dim": 256, "encoder_layers": 3}           # make_model's default rule
    assert encoder_config(dict(encoder="cnn_lstm", conv_filters=(8,))) == \
        {"encoder": "cnn_lstm", "hidden_dim": 256, "n_heads": 8, "conv_filters": [8], "conv_kernel": 3}
    assert encoder_config(dict(encoder="clstm", encoder_init="some/dir")) == \
        {"encoder": "clstm", "hidden_dim": 256, "n_heads": 8}                # encoder_init: not the network's
    with pytest.raises(ValueError, match="unknown model.encoder 'cnn'"):
        encoder_config(dict(encoder="cnn"))
