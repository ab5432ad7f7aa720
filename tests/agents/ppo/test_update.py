"""Minibatching, sequence re-runs, critic-only epochs, actor/critic learning rates, losses."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxtrade.agents import ppo
from jaxtrade.agents.ppo.optim import make_schedule
from jaxtrade.agents.ppo.update import sequence_forward
from jaxtrade.envs.probes import make_probe

from .helpers import tiny_config, tiny_rollout


@pytest.fixture(scope="module")
def constant_rollout():
    env, env_params = make_probe("constant", episode_length=5)
    cfg = tiny_config()
    return (cfg, env, env_params) + tiny_rollout(cfg, env, env_params)


def test_minibatch_indices_partition_and_device_invariance():
    key = jax.random.key(3)
    one = np.asarray(ppo.minibatch_indices(key, 32, 4, 0))                       # 1 device x 32 envs
    assert one.shape == (4, 8) and sorted(one.ravel().tolist()) == list(range(32))
    four = [np.asarray(ppo.minibatch_indices(key, 8, 4, 8 * d)) + 8 * d for d in range(4)]
    for m in range(4):   # global minibatch m is the same set of envs either way
        assert set(one[m]) == set(np.concatenate([f[m] for f in four]))
    other = np.asarray(ppo.minibatch_indices(jax.random.key(4), 32, 4, 0))
    assert not np.array_equal(one, other)


def test_minibatch_rerun_reproduces_rollout_values(constant_rollout):
    _, _, _, agent, train_state, traj, _ = constant_rollout
    hp, model = agent.hp, agent.model
    assert bool(jnp.any(traj.done)) and bool(jnp.any(traj.reset))       # episodes end inside the rollout
    assert not bool(jnp.all(traj.init_hidden[0] == 0))                  # and it starts mid-episode
    idx = ppo.minibatch_indices(jax.random.key(0), hp.n_envs, hp.n_minibatches, 0)
    forward = jax.jit(sequence_forward, static_argnums=0)
    for mb in np.asarray(idx):
        obs = jax.tree.map(lambda x, mb=mb: x[:, mb], traj.obs)
        hidden = jax.tree.map(lambda x, mb=mb: x[mb], traj.init_hidden)
        dist, value = forward(model, train_state.params, hidden, obs, traj.reset[:, mb])
        np.testing.assert_allclose(value, traj.value[:, mb], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dist.log_prob(traj.action[:, mb]), traj.log_prob[:, mb],
                                   rtol=1e-5, atol=1e-5)


def test_first_minibatch_ratios_are_one_with_dropout(constant_rollout):
    """Before any step the update's policy is the rollout's: every ratio is exactly 1 although
    model.dropout > 0. With clip_eps = 0, clip_frac is the share of ratios != 1; one epoch of one
    minibatch makes the update's metrics that first minibatch's own."""
    _, env, _, _, train_state, traj, _ = constant_rollout
    cfg = tiny_config(update_epochs=1, n_minibatches=1, critic_epochs=0, clip_eps=0.0)
    cfg.model.dropout = 0.5
    agent = ppo.make(cfg, env)
    train_state = train_state._replace(
        opt_state=agent.opt.init(train_state.params, agent.hparams.learning_rates()))
    adv, targets = ppo.gae(traj.reward, traj.value, traj.done, traj.last_value, gamma=0.9, lambda_=0.95)
    _, metrics = _update(agent, train_state, traj, adv, targets)
    assert float(metrics["clip_frac"]) == 0.0
    assert float(metrics["approx_kl"]) == 0.0


def test_truncation_bootstrap_values_recorded(constant_rollout):
    _, _, _, agent, _, traj, stats = constant_rollout
    hp = agent.hp
    truncated = np.asarray(traj.truncated)
    assert truncated.any() and np.array_equal(truncated, np.asarray(traj.done))     # constant probe truncates
    assert np.all(np.asarray(traj.final_value)[~truncated] == 0)
    assert np.all(np.asarray(traj.final_value)[truncated] != 0)
    assert float(stats["episodes"]) == truncated.sum()
    np.testing.assert_allclose(float(stats["episode_return_sum"]), 5.0 * truncated.sum())
    np.testing.assert_allclose(float(stats["reward_sum"]), hp.n_steps * hp.n_envs)


def _labels_split(tree, params):
    pairs = list(zip(jax.tree.leaves(ppo.param_labels(params)), jax.tree.leaves(tree), strict=True))
    return [x for lab, x in pairs if lab == "actor"], [x for lab, x in pairs if lab == "critic"]


def _update(agent, train_state, traj, adv, targets, key=0):
    fn = jax.jit(lambda ts, t, a, r, k, h: ppo.update(agent.model, agent.opt, ts, t, a, r, k, hp=agent.hp,
                                                      hparams=h))
    return fn(train_state, traj, adv, targets, jax.random.key(key), agent.hparams)


def test_critic_epochs_update_only_value_head(constant_rollout):
    _, env, _, _, train_state, traj, _ = constant_rollout     # the params that collected traj
    agent = ppo.make(tiny_config(update_epochs=0, critic_epochs=2), env)
    hp = agent.hp
    train_state = train_state._replace(
        opt_state=agent.opt.init(train_state.params, agent.hparams.learning_rates()))
    # Move the actor's Adam state off its initial zeros first, so "unchanged" is not "still zero".
    grads = jax.tree.map(jnp.ones_like, train_state.params)
    _, opt_state = agent.opt.update(grads, train_state.opt_state, train_state.params,
                                    agent.hparams.learning_rates())
    train_state = train_state._replace(opt_state=opt_state)
    adv, targets = ppo.gae(traj.reward, traj.value, traj.done, traj.last_value, gamma=0.9, lambda_=0.95)
    new_state, metrics = _update(agent, train_state, traj, adv, targets + 1.0)
    chex.assert_tree_all_finite((new_state.params, metrics["critic_value_loss"]))
    for name in ("encoder", "core", "policy"):
        chex.assert_trees_all_equal(new_state.params[name], train_state.params[name])
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new_state.params["value"],
                           train_state.params["value"])
    assert all(jax.tree.leaves(changed))
    # The actor group's Adam moments and counts did not move either (else momentum would move it later).
    actor_before = train_state.opt_state["actor"]
    assert float(jnp.abs(actor_before.inner_state[0].mu["policy"]["out"]["kernel"]).max()) > 0
    chex.assert_trees_all_equal(new_state.opt_state["actor"], actor_before)
    assert int(actor_before.inner_state[0].count) == 1
    assert int(new_state.opt_state["critic"].inner_state[0].count) == 1 + 2 * hp.n_minibatches


@pytest.mark.parametrize("frozen", [("encoder",), ("encoder", "core", "policy")])
def test_frozen_modules_bit_unchanged_after_an_update(constant_rollout, frozen):
    _, env, _, _, train_state, traj, _ = constant_rollout
    agent = ppo.make(tiny_config(frozen=frozen), env)
    train_state = train_state._replace(
        opt_state=agent.opt.init(train_state.params, agent.hparams.learning_rates()))
    assert set(train_state.opt_state) == ({"critic"} if "policy" in frozen else {"actor", "critic"})
    adv, targets = ppo.gae(traj.reward, traj.value, traj.done, traj.last_value, gamma=0.9, lambda_=0.95)
    new_state, metrics = _update(agent, train_state, traj, adv, targets + 1.0)
    assert float(metrics["grad_norm"]) > 0
    for name in ("encoder", "core", "policy", "value"):
        same = jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), new_state.params[name],
                                            train_state.params[name]))
        if name in frozen:
            chex.assert_trees_all_equal(new_state.params[name], train_state.params[name])
        else:
            assert not all(same), name
    labels = ppo.param_labels(train_state.params, frozen)
    assert set(jax.tree.leaves({k: labels[k] for k in frozen})) == {"frozen"}
    with pytest.raises(ValueError, match="ppo.frozen"):
        ppo.make(tiny_config(frozen=("encoderr",)), env)


def _labels_split(tree, params):
    pairs = list(zip(jax.tree.leaves(ppo.param_labels(params)), jax.tree.leaves(tree), strict=True))
    return [x for lab, x in pairs if lab == "actor"], [x for lab, x in pairs if lab == "critic"]


def test_actor_and_critic_get_their_own_learning_rates():
    cfg = tiny_config(actor_lr=1e-3, critic_lr=5e-3, max_grad_norm=1e9)
    env, env_params = make_probe("bandit")
    agent = ppo.make(cfg, env)
    params = agent.init_params(jax.random.key(0), env_params)
    lrs = agent.hparams.learning_rates()
    grads = jax.tree.map(jnp.ones_like, params)
    updates, state = agent.opt.update(grads, agent.opt.init(params, lrs), params, lrs)
    actor, critic = _labels_split(updates, params)
    assert actor and critic
    # Adam's first step is -lr * g / (|g| + eps) = -lr / (1 + 1e-5) for g = 1.
    for x in actor:
        np.testing.assert_allclose(x, -1e-3, rtol=1e-4)
    for x in critic:
        np.testing.assert_allclose(x, -5e-3, rtol=1e-4)
    # The rates are injected hyperparameters: a traced value replaces the config's one.
    np.testing.assert_allclose(state["actor"].hyperparams["learning_rate"], 1e-3)
    updates, _ = agent.opt.update(grads, agent.opt.init(params, lrs), params, {"actor": 2e-3, "critic": 1e-3})
    actor, critic = _labels_split(updates, params)
    np.testing.assert_allclose(actor[0], -2e-3, rtol=1e-4)
    np.testing.assert_allclose(critic[0], -1e-3, rtol=1e-4)
    labels = ppo.param_labels(params)
    assert set(jax.tree.leaves(labels["value"])) == {"critic"}
    assert set(jax.tree.leaves({k: labels[k] for k in ("encoder", "core", "policy")})) == {"actor"}


def test_gradient_clipping_global_and_per_group():
    """Global: one norm over actor + critic; per group: each group's own norm. Adam's first step is
    scale-free and would hide the clip, so a huge eps turns it into -lr * g / eps."""
    env, env_params = make_probe("bandit")
    params = ppo.make(tiny_config(), env).init_params(jax.random.key(0), env_params)
    grads = jax.tree.map(jnp.ones_like, params)
    labels = ppo.param_labels(params)
    sizes = {g: sum(x.size for lab, x in zip(jax.tree.leaves(labels), jax.tree.leaves(params), strict=True)
                    if lab == g) for g in ("actor", "critic")}
    for per_group in (False, True):
        agent = ppo.make(tiny_config(max_grad_norm=1.0, clip_per_group=per_group, actor_lr=1.0, critic_lr=1.0,
                                     adam_eps=1e9), env)
        lrs = agent.hparams.learning_rates()
        updates, _ = agent.opt.update(grads, agent.opt.init(params, lrs), params, lrs)
        actor, critic = _labels_split(updates, params)
        # With eps >> |g| Adam's first step is -lr * g_clipped / eps: the clipped gradient itself.
        norm = lambda xs: float(np.sqrt(sum(np.sum(np.square(x)) for x in xs))) * 1e9
        if per_group:
            np.testing.assert_allclose([norm(actor), norm(critic)], [1.0, 1.0], rtol=1e-4)
        else:
            total = np.sqrt(sizes["actor"] + sizes["critic"])
            np.testing.assert_allclose([norm(actor), norm(critic)],
                                       np.sqrt([sizes["actor"], sizes["critic"]]) / total, rtol=1e-4)


def test_schedules_warmup_and_decay():
    for kind in ("constant", "linear", "cosine"):
        s = make_schedule(kind, 1.0, 10, 110)
        np.testing.assert_allclose([s(0), s(5), s(10)], [0.0, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(make_schedule("linear", 1.0, 10, 110)(60), 0.5, atol=1e-6)
    np.testing.assert_allclose(make_schedule("cosine", 1.0, 10, 110)(60), 0.5, atol=1e-6)
    np.testing.assert_allclose(make_schedule("constant", 1.0, 0, 100)(99), 1.0)


def test_grad_accumulation_uses_multisteps():
    cfg = tiny_config(grad_accum_steps=2, actor_lr=1e-3, max_grad_norm=1e9)
    env, env_params = make_probe("bandit")
    agent = ppo.make(cfg, env)
    params = agent.init_params(jax.random.key(0), env_params)
    lrs = agent.hparams.learning_rates()
    state = agent.opt.init(params, lrs)
    assert isinstance(state["actor"].inner_state, optax.MultiStepsState)
    ones = jax.tree.map(jnp.ones_like, params)
    u1, state = agent.opt.update(ones, state, params, lrs)
    u2, state = agent.opt.update(jax.tree.map(lambda x: 3.0 * x, ones), state, params, lrs)
    assert all(float(jnp.max(jnp.abs(x))) == 0.0 for x in jax.tree.leaves(u1))       # accumulating
    actor, _ = _labels_split(u2, params)
    np.testing.assert_allclose(actor[0], -1e-3, rtol=1e-4)                           # one step on the mean
    with pytest.raises(ValueError):
        ppo.PPOHParams.from_config(tiny_config(grad_accum_steps=3))


def test_ppo_loss_numbers_and_finite_grads():
    from jaxtrade.models import Categorical
    logits = jnp.log(jnp.array([[[0.5, 0.5]], [[0.8, 0.2]]]))            # [T=2, B=1, A=2]
    action = jnp.array([[0], [0]])
    old_log_prob = jnp.log(jnp.array([[0.5], [0.5]]))                    # ratios 1.0 and 1.6
    adv = jnp.array([[1.0], [1.0]])
    value, old_value, target = jnp.zeros((2, 1)), jnp.zeros((2, 1)), jnp.ones((2, 1))

    def loss(lg):
        return ppo.ppo_loss(Categorical(lg), value, action, old_log_prob, old_value, adv, target,
                            clip_eps=0.2, vf_clip=0.0, ent_coef=0.0, vf_coef=0.5)

    (total, m), grads = jax.value_and_grad(loss, has_aux=True)(logits)
    chex.assert_tree_all_finite((total, m, grads))
    # surrogate: min(1*1, 1*1) = 1 and min(1.6, 1.2) = 1.2 -> policy loss -1.1; value loss 0.5 * 1.
    np.testing.assert_allclose(m["policy_loss"], -1.1, rtol=1e-6)
    np.testing.assert_allclose(m["value_loss"], 0.5, rtol=1e-6)
    np.testing.assert_allclose(m["clip_frac"], 0.5)
    np.testing.assert_allclose(total, -1.1 + 0.25, rtol=1e-6)
    assert float(jnp.abs(grads[1]).sum()) == 0.0                         # clipped step has no gradient
    # max((2-3)^2, (clip(2, -0.5, 0.5) - 3)^2) = 6.25
    clipped = ppo.value_loss(jnp.array([2.0]), jnp.array([0.0]), jnp.array([3.0]), vf_clip=0.5)
    np.testing.assert_allclose(clipped, 0.5 * 6.25)
