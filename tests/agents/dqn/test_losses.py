"""DQN's targets against hand-derived numbers: n-step returns across a truncation (bootstrap from the
episode's final observation) and a termination (no bootstrap), the double-Q target (online argmax,
target value), masked maxima, the Huber loss, epsilon-greedy acting and its schedule."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxtrade.agents import dqn
from jaxtrade.agents.dqn import losses
from jaxtrade.envs.probes import make_probe

from .helpers import tiny_config


def test_nstep_returns_stop_at_episode_ends_and_at_the_collection_end():
    gamma, n = 0.5, 3
    # env 0: truncated at t=1 (done, not terminated); env 1: terminated at t=2. Time-major [T=5, B=2].
    reward = jnp.array([[1, 1], [2, 1], [3, 1], [4, 1], [5, 1]], jnp.float32)
    done = jnp.array([[0, 0], [1, 0], [0, 1], [0, 0], [0, 0]], bool)
    terminated = jnp.array([[0, 0], [0, 0], [0, 1], [0, 0], [0, 0]], bool)
    ret, discount, last = jax.jit(losses.nstep_returns, static_argnames="n")(
        reward, done, terminated, gamma=gamma, n=n)
    # env 0, t=0: 1 + .5*2 = 2, stops at the truncation (t=1), bootstraps with .5^2
    #        t=1: 2, .5;  t=2: 3 + .5*4 + .25*5 = 6.25, .5^3;  t=3: 4 + .5*5 = 6.5, cut at T-1, .25;
    #        t=4: 5, .5
    # env 1, t=0: 1 + .5 + .25 = 1.75 and t=1: 1.5 and t=2: 1 all end at the termination (t=2): discount 0
    #        t=3: 1.5, .25;  t=4: 1, .5
    np.testing.assert_allclose(ret[:, 0], [2, 2, 6.25, 6.5, 5])
    np.testing.assert_allclose(discount[:, 0], [0.25, 0.5, 0.125, 0.25, 0.5])
    np.testing.assert_array_equal(last[:, 0], [1, 1, 4, 4, 4])
    np.testing.assert_allclose(ret[:, 1], [1.75, 1.5, 1, 1.5, 1])
    np.testing.assert_allclose(discount[:, 1], [0, 0, 0, 0.25, 0.5])
    np.testing.assert_array_equal(last[:, 1], [2, 2, 2, 4, 4])
    one, disc1, _ = losses.nstep_returns(reward, done, terminated, gamma=gamma, n=1)      # 1-step TD
    np.testing.assert_allclose(one, reward)
    np.testing.assert_allclose(disc1, np.where(terminated, 0.0, gamma))


def test_collected_transitions_bootstrap_a_truncation_from_the_final_observation():
    # `constant`: reward 1 every step, truncated after 4 steps; state[0] = t / 4 shows the step.
    env, env_params = make_probe("constant", episode_length=4)
    agent = dqn.make(tiny_config(n_envs=2, n_steps=6, n_step=3, gamma=0.5), env)
    params = agent.init_params(jax.random.key(0), env_params)
    obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.key(1), 2), env_params)
    run = jax.jit(lambda p, s, o: dqn.collect(env, agent.net, p, s, o, env_params, jax.random.key(2),
                                              n_steps=6, env_index=jnp.arange(2), epsilon=0.5, gamma=0.5,
                                              n_step=3))
    tr, _, stats = run(params, env_state, obs)
    t_obs = np.asarray(tr.obs["state"][:, 0]).reshape(6, 2)[:, 0] * 4       # env 0's steps: 0 1 2 3 0 1
    t_next = np.asarray(tr.next_obs["state"][:, 0]).reshape(6, 2)[:, 0] * 4
    np.testing.assert_array_equal(t_obs, [0, 1, 2, 3, 0, 1])
    # env 0's transitions (n=3, gamma=.5): t=0: 1+.5+.25 from the obs of step 3; t=1: the same, up to the
    # truncation after step 3, from the final obs (t=4 of that episode, not the reset's t=0); t=2: 1.5 and
    # t=3: 1 from it too; t=4, 5 (the next episode's steps 0, 1): cut at the collection's end, from its t=2
    np.testing.assert_array_equal(t_next, [3, 4, 4, 4, 2, 2])
    np.testing.assert_allclose(np.asarray(tr.ret).reshape(6, 2)[:, 0], [1.75, 1.75, 1.5, 1, 1.5, 1])
    np.testing.assert_allclose(np.asarray(tr.discount).reshape(6, 2)[:, 0], [.125, .125, .25, .5, .25, .5])
    assert float(stats["episodes"]) == 2 and float(stats["reward_sum"]) == 12


def test_double_q_takes_the_online_argmax_and_the_target_value_over_allowed_actions():
    q_online = jnp.array([[1.0, 5.0, 3.0], [7.0, 5.0, 3.0]])
    q_target = jnp.array([[10.0, 40.0, 30.0], [10.0, 40.0, 30.0]])
    ret, discount = jnp.array([1.0, 2.0]), jnp.array([0.5, 0.0])
    free = {"state": jnp.zeros((2, 1))}
    masked = {"state": jnp.zeros((2, 1)), "action_mask": jnp.array([[True, False, True], [True, True, True]])}
    target = jax.jit(losses.td_target, static_argnames="double")
    # double: online argmax (1, 0) -> target values (40, 10); masked, row 0's argmax over {0, 2} is 2 -> 30
    np.testing.assert_allclose(target(ret, discount, q_online, q_target, free, double=True), [1 + 20, 2])
    np.testing.assert_allclose(target(ret, discount, q_online, q_target, masked, double=True), [1 + 15, 2])
    # plain: the target's max (40, 40); masked, row 0's max over {0, 2} is 30
    np.testing.assert_allclose(target(ret, discount, q_online, q_target, free, double=False), [1 + 20, 2])
    np.testing.assert_allclose(target(ret, discount, q_online, q_target, masked, double=False), [1 + 15, 2])
    np.testing.assert_allclose(target(ret, jnp.ones(2), q_online, q_target, free, double=True), [41, 12])
    np.testing.assert_allclose(target(ret, jnp.ones(2), q_online, q_target, free, double=False), [41, 42])


def test_huber_q_loss():
    q = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    loss, metrics = losses.q_loss(q, jnp.array([1, 0]), jnp.array([2.5, 0.0]), huber_delta=1.0)
    # Q(s, a) = (2, 3): errors -0.5 -> 0.5 * 0.25 = 0.125; 3 -> 1 * (3 - 0.5) = 2.5; mean 1.3125
    np.testing.assert_allclose(loss, 1.3125)
    np.testing.assert_allclose(metrics["q_mean"], 2.5)
    np.testing.assert_allclose(metrics["td_error"], 1.75)


def test_epsilon_greedy_explores_allowed_actions_only_and_the_schedule():
    q = jnp.array([0.0, 9.0, 1.0, 2.0])
    obs = {"action_mask": jnp.array([True, False, True, True])}
    act = jax.jit(jax.vmap(dqn.epsilon_greedy, (0, None, None, None)))
    keys = jax.random.split(jax.random.key(0), 4000)
    explore = np.asarray(act(keys, q, obs, 1.0))
    np.testing.assert_allclose(np.bincount(explore, minlength=4) / 4000, [1 / 3, 0, 1 / 3, 1 / 3], atol=0.03)
    np.testing.assert_array_equal(np.asarray(act(keys, q, obs, 0.0)), 3)          # masked argmax
    mixed = np.bincount(np.asarray(act(keys, q, obs, 0.3)), minlength=4) / 4000
    np.testing.assert_allclose(mixed, [0.1, 0, 0.1, 0.8], atol=0.03)
    h = dqn.TracedHParams(epsilon_start=jnp.float32(1.0), epsilon_end=jnp.float32(0.1))
    schedule = [dqn.epsilon(s, h, 10) for s in (0, 5, 10, 20)]
    np.testing.assert_allclose(schedule, [1.0, 0.55, 0.1, 0.1], rtol=1e-6)
    hp = dqn.DQNHParams.from_config(tiny_config(epsilon_fraction=0.5, total_updates=30))
    assert dqn.derived_sizes(hp)["epsilon_decay_iterations"] == 15
    assert dqn.derived_sizes(hp)["updates_per_iteration"] == 4          # 1/16 * 8 envs * 8 steps
