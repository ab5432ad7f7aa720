"""ActorCritic: parameter tree names, shapes and dtypes, core reset semantics, distributions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.models import ActorCritic, Categorical, CoreStep, DiagGaussian

T, B, W, D, S = 6, 3, 5, 2, 3


def _obs(key, t=T, b=B):
    k1, k2 = jax.random.split(key)
    return {"window": jax.random.normal(k1, (t, b, W, D)), "state": jax.random.normal(k2, (t, b, S))}


@pytest.mark.parametrize("encoder,core", [("mlp", "gru"), ("clstm", "lstm"), ("mlp", "mlp")])
def test_param_tree_names_and_shapes(encoder, core):
    model = ActorCritic(action_dim=3, encoder_type=encoder, core_type=core, hidden_dim=8, n_layers=2,
                        n_heads=2, dropout=0.1)
    obs, done = _obs(jax.random.key(0)), jnp.zeros((T, B), bool)
    params = model.init(jax.random.key(1), model.initialize_carry(B), obs, done)["params"]
    assert sorted(params) == ["core", "encoder", "policy", "value"]
    carry, dist, value = model.apply({"params": params}, model.initialize_carry(B), obs, done, train=True,
                                     rngs={"dropout": jax.random.key(2)})
    assert isinstance(dist, Categorical) and dist.logits.shape == (T, B, 3)
    assert value.shape == (T, B) and value.dtype == jnp.float32
    assert jax.tree.structure(carry) == jax.tree.structure(model.initialize_carry(B))
    if encoder == "clstm":   # attention's own `value` submodule sits inside the encoder
        assert "attention" in params["encoder"]


def test_bfloat16_compute_keeps_float32_params_and_gaussian_policy():
    model = ActorCritic(action_dim=4, discrete=False, hidden_dim=8, n_layers=1, compute_dtype="bfloat16")
    obs, done = _obs(jax.random.key(0)), jnp.zeros((T, B), bool)
    params = model.init(jax.random.key(1), model.initialize_carry(B), obs, done)["params"]
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
    carry, dist, value = model.apply({"params": params}, model.initialize_carry(B), obs, done)
    assert isinstance(dist, DiagGaussian) and dist.mean.shape == (T, B, 4) and dist.mean.dtype == jnp.float32
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(carry))
    assert np.all(np.isfinite(np.asarray(value)))


@pytest.mark.parametrize("core", ["gru", "lstm"])
def test_core_state_after_done_equals_initial(core):
    """A reset at step k makes steps >= k identical to a fresh run from initialize_carry on obs[k:]."""
    model = ActorCritic(action_dim=2, core_type=core, hidden_dim=8, n_layers=2, dropout=0.0)
    obs = _obs(jax.random.key(0))
    k = 3
    reset = jnp.zeros((T, B), bool).at[k].set(True)
    params = model.init(jax.random.key(1), model.initialize_carry(B), obs, reset)
    random_carry = jax.tree.map(lambda x: jax.random.normal(jax.random.key(5), x.shape),
                                model.initialize_carry(B))
    carry_full, _, value_full = model.apply(params, random_carry, obs, reset)
    fresh_obs = jax.tree.map(lambda x: x[k:], obs)
    carry_fresh, _, value_fresh = model.apply(params, model.initialize_carry(B), fresh_obs, reset[k:])
    np.testing.assert_allclose(value_full[k:], value_fresh, rtol=1e-6, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), carry_full, carry_fresh)
    # Without the reset the random initial state leaks into later steps (the test can fail).
    _, _, value_noreset = model.apply(params, random_carry, obs, jnp.zeros((T, B), bool))
    assert not np.allclose(value_noreset[k:], value_fresh, atol=1e-4)


def test_core_step_reset_zeroes_carry():
    step = CoreStep(kind="lstm", hidden_dim=4, n_layers=1)
    x = jnp.ones((2, 3))
    carry = ((jnp.full((2, 4), 3.0), jnp.full((2, 4), -2.0)),)
    zero = ((jnp.zeros((2, 4)), jnp.zeros((2, 4))),)
    params = step.init(jax.random.key(0), carry, (x, jnp.zeros(2, bool)))
    out_reset = step.apply(params, carry, (x, jnp.array([True, False])))
    out_zero = step.apply(params, zero, (x, jnp.zeros(2, bool)))
    np.testing.assert_array_equal(out_reset[1][0], out_zero[1][0])
    assert not np.allclose(out_reset[1][1], out_zero[1][1])


def test_distributions_match_closed_forms():
    logits = jnp.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]])
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    cat = Categorical(logits)
    np.testing.assert_allclose(cat.log_prob(jnp.array([1, 2])), np.log([p[0, 1], p[1, 2]]), rtol=1e-6)
    np.testing.assert_allclose(cat.entropy(), -(p * np.log(p)).sum(-1), rtol=1e-6)
    np.testing.assert_array_equal(cat.mode(), [1, 0])
    mean, log_std = jnp.array([[0.5, -1.0]]), jnp.array([[0.0, np.log(2.0)]])
    g = DiagGaussian(mean, log_std)
    a = jnp.array([[1.5, 1.0]])
    # N(1.5; 0.5, 1) and N(1; -1, 2): -0.5*1 - 0.5 log 2pi  +  -0.5*1 - log 2 - 0.5 log 2pi
    expected = -1.0 - np.log(2.0) - np.log(2 * np.pi)
    np.testing.assert_allclose(g.log_prob(a), [expected], rtol=1e-6)
    np.testing.assert_allclose(g.entropy(), [np.log(2.0) + 1.0 + np.log(2 * np.pi)], rtol=1e-6)
    keys = jax.random.split(jax.random.key(0), 20000)
    samples = jax.vmap(lambda k: DiagGaussian(mean[0], log_std[0]).sample(k))(keys)
    np.testing.assert_allclose(samples.std(0), [1.0, 2.0], rtol=0.05)


def test_layer_norm_matches_flax_values_and_gradients():
    """The hand-written LayerNorm backward equals autodiff through flax's LayerNorm."""
    import flax.linen as nn

    from jaxtrade.models.layers import LayerNorm

    x = 3.0 * jax.random.normal(jax.random.key(0), (2, 5, 16)) + 1.0
    params = {"scale": 1.0 + 0.1 * jax.random.normal(jax.random.key(1), (16,)),
              "bias": 0.1 * jax.random.normal(jax.random.key(2), (16,))}
    w = jax.random.normal(jax.random.key(3), x.shape)
    ours, ref = LayerNorm(), nn.LayerNorm()
    init = lambda m: jax.tree.structure(m.init(jax.random.key(0), x))
    assert init(ours) == init(ref)                                   # same parameter names

    def loss(module):
        return lambda p, x: jnp.sum(jnp.tanh(module.apply({"params": p}, x)) * w)

    np.testing.assert_allclose(ours.apply({"params": params}, x), ref.apply({"params": params}, x), atol=1e-5)
    for got, want in zip(jax.grad(loss(ours), (0, 1))(params, x), jax.grad(loss(ref), (0, 1))(params, x),
                         strict=True):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), got, want)


@pytest.mark.parametrize("encoder", ["mlp", "clstm"])
def test_encoders_read_every_obs_key(encoder):
    """An extra obs entry (here an action mask) changes the output: no key is silently dropped."""
    from jaxtrade.envs.base import DiscreteSpec
    from jaxtrade.models import make_model

    model = make_model(dict(encoder=encoder, core="gru", hidden_dim=8, n_layers=1, n_heads=2, dropout=0.0),
                       DiscreteSpec(3))
    obs, done = _obs(jax.random.key(0)), jnp.zeros((T, B), bool)
    obs["mask"] = jnp.ones((T, B, 3), bool)
    params = model.init(jax.random.key(1), model.initialize_carry(B), obs, done)
    _, dist, value = model.apply(params, model.initialize_carry(B), obs, done)
    for changed in (dict(obs, mask=obs["mask"].at[..., 1].set(False)),
                    dict(obs, state=obs["state"] + 1.0)):
        _, dist2, value2 = model.apply(params, model.initialize_carry(B), changed, done)
        assert not np.allclose(value, value2, atol=1e-6)
        assert not np.allclose(dist.logits, dist2.logits, atol=1e-7)
    first = params["params"]["encoder"]["dense_0" if encoder == "mlp" else "joint"]["kernel"]
    # mlp: W*D window + S state + 3 mask inputs; clstm: H pooled + S + 3.
    assert first.shape[0] == (W * D if encoder == "mlp" else 8) + S + 3


def test_make_model_from_spec_only():
    from jaxtrade.envs.base import ContinuousSpec, DiscreteSpec
    from jaxtrade.models import make_model

    cfg = dict(encoder="mlp", core="lstm", hidden_dim=8, n_layers=1, dropout=0.0, init_log_std=-1.0)
    disc = make_model(cfg, DiscreteSpec(5, masked=True))
    cont = make_model(cfg, ContinuousSpec((4,), 0.0, 1.0))
    assert (disc.action_dim, disc.discrete, disc.core_type) == (5, True, "lstm")
    assert (cont.action_dim, cont.discrete, cont.init_log_std) == (4, False, -1.0)
    with pytest.raises(ValueError, match="model.hiden_dim"):
        make_model(dict(cfg, hiden_dim=8), DiscreteSpec(2))
