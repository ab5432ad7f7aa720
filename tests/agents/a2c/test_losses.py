"""The A2C loss against hand-derived numbers; n-step returns against a plain-Python loop."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.agents import a2c
from jaxtrade.agents.a2c import a2c_loss, advantages_and_targets
from jaxtrade.agents.ppo import Trajectory
from jaxtrade.envs.probes import make_probe
from jaxtrade.models.distributions import Categorical

LN3 = math.log(3.0)
# 2 steps x 2 envs, two actions. Logits (0, 0) give p = (1/2, 1/2); logits (ln 3, 0) give p = (3/4, 1/4).
LOGITS = np.array([[[0.0, 0.0], [LN3, 0.0]],
                   [[LN3, 0.0], [0.0, 0.0]]], np.float32)
ACTION = np.array([[0, 0], [1, 1]], np.int32)
ADV = np.array([[2.0, -1.0], [1.0, -2.0]], np.float32)
VALUE = np.array([[1.0, 0.0], [2.0, 1.0]], np.float32)
TARGET = np.array([[3.0, 1.0], [2.0, -1.0]], np.float32)
ENT_COEF, VF_COEF = 0.1, 0.5


def _loss(logits, value, adv, target):
    return a2c_loss(Categorical(logits), value, jnp.asarray(ACTION), adv, target, ent_coef=ENT_COEF,
                    vf_coef=VF_COEF)


def test_a2c_loss_hand_derived():
    loss, metrics = _loss(*map(jnp.asarray, (LOGITS, VALUE, ADV, TARGET)))
    # log pi(a): -ln2, ln(3/4), ln(1/4), -ln2; times the advantages 2, -1, 1, -2:
    # -2 ln2 - ln(3/4) + ln(1/4) + 2 ln2 = ln(1/3), so policy_loss = -ln(1/3) / 4 = ln3 / 4.
    policy_loss = LN3 / 4
    # (V - R)^2: 4, 1, 0, 4 -> 0.5 * 9 / 4.
    value_loss = 0.5 * 9.0 / 4
    # H(1/2, 1/2) = ln2 twice, H(3/4, 1/4) = -(3/4 ln(3/4) + 1/4 ln(1/4)) twice.
    h34 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    entropy = (math.log(2.0) + h34) / 2
    np.testing.assert_allclose(metrics["policy_loss"], policy_loss, rtol=1e-6)
    np.testing.assert_allclose(metrics["value_loss"], value_loss, rtol=1e-6)
    np.testing.assert_allclose(metrics["entropy"], entropy, rtol=1e-6)
    np.testing.assert_allclose(loss, policy_loss - ENT_COEF * entropy + VF_COEF * value_loss, rtol=1e-6)
    np.testing.assert_allclose(loss, 0.7743786, rtol=1e-6)      # ln3/4 - 0.1 * 0.6277411 + 0.5625


@pytest.mark.parametrize("use_jit", [False, True])
def test_a2c_loss_gradients_hand_derived(use_jit):
    grad_fn = jax.grad(lambda *a: _loss(*a)[0], argnums=(0, 1, 2, 3))
    grad_fn = jax.jit(grad_fn) if use_jit else grad_fn
    g_logits, g_value, g_adv, g_target = grad_fn(*map(jnp.asarray, (LOGITS, VALUE, ADV, TARGET)))
    # Policy term, per cell: -(1/4) * A * (onehot(a) - p).
    # Entropy term: -ENT_COEF / 4 * dH/dz with dH/dz_i = -p_i (ln p_i + H): 0 at p = (1/2, 1/2);
    # at p = (3/4, 1/4) it is (-3/4, 1/4) * (ln p + H) = (-0.2059897, +0.2059897).
    h34 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    dh = np.array([-0.75 * (math.log(0.75) + h34), -0.25 * (math.log(0.25) + h34)])
    ent = -ENT_COEF / 4 * dh
    expected = np.array([[[-0.25, 0.25],                           # -(1/4) 2 (1/2, -1/2)
                          np.array([0.0625, -0.0625]) + ent],      # -(1/4) (-1) (1/4, -1/4)
                         [np.array([0.1875, -0.1875]) + ent,       # -(1/4) 1 (-3/4, 3/4)
                          [-0.25, 0.25]]])                         # -(1/4) (-2) (-1/2, 1/2)
    np.testing.assert_allclose(g_logits, expected, rtol=1e-5, atol=1e-7)
    # Critic: VF_COEF * (V - R) / 4.
    np.testing.assert_allclose(g_value, VF_COEF * (VALUE - TARGET) / 4, rtol=1e-6)
    # The advantage and the target are constants of the loss.
    np.testing.assert_array_equal(g_adv, 0.0)
    np.testing.assert_array_equal(g_target, 0.0)


def nstep_returns_loop(reward, done, truncated, final_value, last_value, gamma, bootstrap):
    """Discounted return of each step up to the rollout's end (plain Python): bootstrapped from
    last_value there, from final_value where an episode was truncated, from nothing where it terminated."""
    T, B = reward.shape
    returns = np.zeros((T, B))
    for b in range(B):
        running = last_value[b]
        for t in reversed(range(T)):
            if done[t, b]:
                running = final_value[t, b] if (truncated[t, b] and bootstrap) else 0.0
            running = reward[t, b] + gamma * running
            returns[t, b] = running
    return returns


def _trajectory():
    T, B = 5, 3
    rng = np.random.default_rng(0)
    reward = rng.normal(size=(T, B)).astype(np.float32)
    value = rng.normal(size=(T, B)).astype(np.float32)
    done = np.zeros((T, B), bool)
    truncated = np.zeros((T, B), bool)
    final_value = np.zeros((T, B), np.float32)
    done[1, 0] = truncated[1, 0] = True             # env 0: a time limit at t = 1, V(final obs) = 4
    final_value[1, 0] = 4.0
    done[2, 1] = True                               # env 1: terminated at t = 2
    done[4, 2] = truncated[4, 2] = True             # env 2: a time limit at the rollout's last step
    final_value[4, 2] = -3.0
    last_value = np.array([1.5, -0.5, 10.0], np.float32)    # env 2's must not be read
    f = jnp.asarray
    traj = Trajectory(None, None, None, None, f(value), f(reward), f(done), f(truncated), f(final_value),
                      None, f(last_value))
    return traj, (reward, value, done, truncated, final_value, last_value)


@pytest.mark.parametrize("bootstrap", [True, False])
@pytest.mark.parametrize("use_jit", [False, True])
def test_nstep_returns_match_python_loop_across_truncation_and_termination(bootstrap, use_jit):
    gamma = 0.9
    traj, (reward, value, done, truncated, final_value, last_value) = _trajectory()
    fn = lambda tr, g: advantages_and_targets(tr, gamma=g, lambda_=1.0, bootstrap=bootstrap)
    fn = jax.jit(fn) if use_jit else fn
    adv, targets = fn(traj, jnp.float32(gamma))
    expected = nstep_returns_loop(reward, done, truncated, final_value, last_value, gamma, bootstrap)
    np.testing.assert_allclose(targets, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(adv, expected - value, rtol=1e-5, atol=1e-5)
    # Hand check of env 0 at t = 1: r_1 + gamma * 4 with the bootstrap, r_1 alone without.
    np.testing.assert_allclose(targets[1, 0], reward[1, 0] + (gamma * 4.0 if bootstrap else 0.0), rtol=1e-6)


def test_update_differentiates_the_rollout_policy_with_dropout():
    """model.dropout > 0: the update's loss is that of the deterministic network the rollout runs, so
    its policy_loss and value_loss are those of the rollout's own log-probs and values."""
    env, env_params = make_probe("constant", episode_length=5)
    cfg = a2c.default_config()
    cfg.model.update(hidden_dim=8, n_layers=1, encoder_layers=1, core="mlp", dropout=0.5)
    cfg.a2c.update(n_envs=4, n_steps=4, norm_adv=False)
    agent = a2c.make(cfg, env)
    T, B = 4, 4

    @jax.jit          # one compile: eager init and sampling would compile op by op
    def run(key, h):
        k_init, k_obs, k_act, k_adv = jax.random.split(key, 4)
        ts = agent.init_train_state(k_init, env_params, h)
        obs = {"window": jax.random.normal(k_obs, (T, B, 4, 1)), "state": jax.random.normal(k_obs, (T, B, 2))}
        reset = jnp.zeros((T, B), bool).at[2, 1].set(True)
        action = jax.random.randint(k_act, (T, B), 0, 2)
        hidden = agent.model.initialize_carry(B)
        _, dist, value = agent.model.apply({"params": ts.params}, hidden, obs, reset)     # as in a rollout
        z = jnp.zeros((T, B))
        traj = Trajectory(obs, reset, action, dist.log_prob(action), value, z, z.astype(bool),
                          z.astype(bool), z, hidden, jnp.zeros(B))
        adv, targets = jax.random.normal(k_adv, (2, T, B))
        _, metrics = a2c.update(agent.model, agent.opt, ts, traj, adv, targets, jax.random.key(2),
                                hp=agent.hp, hparams=h)
        return metrics, -jnp.mean(traj.log_prob * adv), 0.5 * jnp.mean(jnp.square(value - targets))

    metrics, policy_loss, value_loss = run(jax.random.key(0), agent.hparams)
    np.testing.assert_allclose(metrics["policy_loss"], policy_loss, rtol=1e-6)
    np.testing.assert_allclose(metrics["value_loss"], value_loss, rtol=1e-6)
