r"""Every registered agent on a gymnax env against published results (ppo, a2c, dqn on CartPole-v1;
ddpg, td3, sac on Pendulum-v1), and DQN's, SAC's and TD3's speed against stable-baselines3's.

    .venv/bin/python -m benchmarks.agents --agents=ppo,a2c,dqn --out=runs/agents_cartpole
    .venv/bin/python -m benchmarks.agents --env=Pendulum-v1 --agents=sac,td3,ddpg --seeds=3 \
        --speed=false --out=runs/agents_pendulum      # 20k env steps per seed, target -200
    .venv/bin/python -m benchmarks.agents --learn=false --speed_agent=sac,td3 --population_agents=sac \
        --speed_steps=1024 --out=runs/offpolicy_speed  # on the portfolio env, weights
    .venv/bin/python -m benchmarks.agents --agents=ppo --seeds=2 --budget=50000 \
        --speed=false      # a quick check
    .venv/bin/python -m benchmarks.agents --learn=false --speed_agent=dqn \
        --speed_steps=20000       # speed only

1. Learning. Each agent of `--agents` (a name that is not registered stops the run, naming it) is
   built by `agents.registry.make_agent(config, env)` on `jaxtrade.envs.gymnax.make_gymnax("CartPole-v1")`,
   where config = seed, agent.name, `model` (`models.default_model_config()` with `MODEL`: the same
   small memoryless network for every agent) and the agent's own section
   (`registry.default_config(name)`) with the CartPole overrides of `cartpole_overrides(name)`, printed
   and saved with the figures. `--seeds` seeds train as one population (`agent.init_seeds`,
   `agent.make_population_iteration`: one compile, one vmap), on one device, for `--budget` env steps
   per seed. About every `--eval_every` env steps (one call of `iterations_per_call` iterations) it
   records, per seed, (a) the mean return of the training episodes that ended in that window
   (stochastic or epsilon-greedy actions: what the published curves plot) and (b) the mean return of
   `--eval_episodes` greedy episodes of `agent.policy(params, deterministic=True)`. Reported: the
   mean over seeds of both against env steps, the env steps at which each first reaches `--target`
   (475: CartPole-v1's "solved" level; the ceiling is 500) and those from which it stays there.
2. Published curves compared with (`REFERENCES`, read off the cited figures; approximate):
   - PPO: PureJaxRL `purejaxrl/ppo.py` (4 envs x 128 steps, 4 epochs x 4 minibatches, Adam 2.5e-4
     annealed, separate 64x2 tanh actor and critic), 5e5 env steps; its `examples/walkthrough.ipynb`
     plots: the 8-seed mean (ent_coef 0.01) reaches ~475 at ~50-60k vector steps x 4 envs, i.e.
     ~200k-240k env steps; CleanRL `ppo.py` (same settings, 3 seeds) crosses ~475 near 270k
     (docs/rl-algorithms/ppo/CartPole-v1.png).
   - DQN: CleanRL `dqn.py` / `dqn_jax.py` (lr 2.5e-4, buffer 10k, batch 128, target copy every 500
     steps, epsilon 1 -> 0.05 over 250k, learning starts 10k, a gradient step every 10 env steps,
     120-84 ReLU net), 5e5 env steps, 3 seeds: final 488.69 +- 16.11 / 498.38 +- 2.29; dqn.py's mean
     curve crosses ~475 near 270k-280k, dqn_jax.py's peaks ~480 at ~275k, dips to ~405, and is back
     above 475 after ~400k (docs/rl-algorithms/dqn.md and its CartPole-v1 figures). Our overrides
     keep those settings and its MSE loss, and add 3-step returns and a linearly decayed rate.
   - A2C: rl-baselines3-zoo `hyperparams/a2c.yml` CartPole-v1 (8 envs, n_steps 5, RMSprop 7e-4,
     ent_coef 0) and `benchmark.md`: 500.0 +- 0.0 (deterministic, 300 episodes) after 5e5 env steps.
     No published A2C CartPole learning curve was found, so only the budget and the final figure.
     Our overrides keep the sizes and returns but use Adam 1.5e-3 decayed linearly (not RMSprop 7e-4).
3. Speed (`--speed`): each of `--speed_agent` (dqn; ppo works too, for checking the harness; sac
   and td3: 5.) against
   stable-baselines3's agent of the same name on the same env through the gymnasium adapter
   (`jaxtrade.envs.gym.GymEnv` over the gymnax core, `FlattenObservation`, `n_envs` of them in a
   DummyVecEnv), with the same layer widths (`MODEL`; SB3's MLP has no LayerNorm), the same env steps
   per timed call (`--speed_steps`) and the same gradient steps (DQN: utd_ratio x env steps, batch,
   buffer, target period in env steps, n-step returns, clipping; PPO: n_steps, epochs, minibatch
   size). Each side warms up (compilation; DQN: the replay buffer past `learning_starts`), then
   `--speed_repeats` timed calls, median; the peer runs with `--torch_threads` torch threads
   (default 1: more threads made torch ~10x slower on these 64-wide layers on the shared 2-core
   machine). A population of `--population` seeds (one call of `make_population_iteration`) is
   timed against the same seeds run one after another (one compiled iteration), in alternating
   rounds so both see the same machine load. The peer needs the `peer` extra (torch CPU,
   stable-baselines3); without it the peer line is skipped with a loud message, the rest still runs.
   For DQN the same seed is also timed with one gradient step per iteration, which splits its time
   per env step into collection and gradient steps (`dqn_breakdown`).
   `--peer_env=gymnasium` gives the peer gymnasium's own env instead of the adapter (each adapter
   step is a jax call from Python, which bounds SB3 there, not its own code).

4. Pendulum-v1 (`--env=Pendulum-v1`, issue 26): ddpg, td3 and sac with `pendulum_overrides(name)`
   (CleanRL's ddpg/td3/sac_continuous_action.py settings where ours has the knob, learning starts
   1,000 and DDPG/TD3 at 1e-3 for the 20k budget: its docstring), the same `MODEL`, default budget
   20,000 env steps per seed, evaluations every 1,000, target -200 (`ENV_SETTINGS`). Published
   (`REFERENCES_PENDULUM`): rl-baselines3-zoo's benchmark table, final returns after 20k env steps
   (sac -157.0 +- 88.7, td3 -151.9 +- 90.2, ddpg -152.1 +- 94.3); rejax's gymnax Pendulum configs
   train sac and td3 for 10k; CleanRL publishes no Pendulum-v1 figure for these agents, and no
   published learning curve was found, so the comparison is budget and final return.
5. sac / td3 speed (`--speed_agent=sac,td3`): on the PORTFOLIO env with continuous weights
   (`env.action_space=weights`, sp500-20 1997-2014, window `--portfolio_window`), not on --env, with
   `portfolio_speed_overrides` on both sides (4 envs x 16 steps, a gradient step per 4 env steps,
   batch 256, replay 4,096, Adam 3e-4, tau 0.005; TD3's noise and delay; SAC's learned temperature
   from 0.1). The peer is SB3's SAC / TD3 with net_arch pi = qf = `PEER_NET` over 4 `GymEnv`
   adapters (flattened observations; the weight logits are unbounded, so an ActionWrapper gives SB3
   a [-1, 1] Box and the env 4 x it, our `offpolicy.to_env_action`), train_freq 16 vec steps,
   gradient_steps 16. What bounds each side: ours from `replay_breakdown` (collection vs gradient
   steps, as DQN's); the peer's from its DummyVecEnv stepped alone with random actions for the same
   env steps (`env_share`): the rest is its update and host code. `--population_agents` picks the
   speed agents whose `--population` is timed against sequential runs (empty: all).

Outputs under `--out`: `learning_curves.png`, `agents.json` (every figure, the configs, the
references, the machine). The machine is shared and noisy: ratios are taken within one run.
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from pathlib import Path

from absl import app, flags

from benchmarks import common

_AGENTS = flags.DEFINE_list("agents", ["ppo", "a2c", "dqn"], "Agents to train on CartPole-v1 (registry "
                            "names).")
_LEARN = flags.DEFINE_boolean("learn", True, "Run the learning part.")
_SEEDS = flags.DEFINE_integer("seeds", 4, "Seeds trained as one population (seeds 0..n-1).")
_BUDGET = flags.DEFINE_integer("budget", None, "Env steps per seed (rounded up to whole calls); default "
                                "per env (ENV_SETTINGS: CartPole-v1 500,000, Pendulum-v1 20,000).")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", None, "Env steps per seed between evaluations (about); "
                                   "default per env (CartPole-v1 16,384, Pendulum-v1 1,000).")
_EVAL_EPISODES = flags.DEFINE_integer("eval_episodes", 8, "Greedy episodes per seed per evaluation.")
_TARGET = flags.DEFINE_float("target", None, "The return whose first crossing is reported; default per env "
                             "(CartPole-v1 475, Pendulum-v1 -200).")
_STOP = flags.DEFINE_boolean("stop_at_target", False, "Stop an agent once both seed-mean returns reach "
                             "--target (else run the whole budget).")
_ENV = flags.DEFINE_enum("env", "CartPole-v1", ["CartPole-v1", "Pendulum-v1"], "gymnax env of the learning "
                         "part (CartPole-v1: ppo, a2c, dqn; Pendulum-v1: ddpg, td3, sac) and of dqn/ppo "
                         "speed.")
_OUT = flags.DEFINE_string("out", "runs/agents_cartpole", "Directory for the PNG and the JSON.")
_SPEED = flags.DEFINE_boolean("speed", True, "Run the speed part.")
_SPEED_AGENT = flags.DEFINE_list("speed_agent", ["dqn"], "Agents timed against stable-baselines3, one after "
                                 "another in this run (dqn | ppo on --env; sac | td3 on the portfolio env).")
_POPULATION_AGENTS = flags.DEFINE_list("population_agents", [], "Speed agents whose population is timed "
                                       "against sequential runs (empty: every speed agent).")
_PORTFOLIO_WINDOW = flags.DEFINE_integer("portfolio_window", 30, "sac/td3 speed: the portfolio env's window "
                                         "(its default 30: obs 30 x 183 features + 21 weights).")
_SPEED_STEPS = flags.DEFINE_integer("speed_steps", 20_000, "Env steps per timed call (one seed).")
_SPEED_REPEATS = flags.DEFINE_integer("speed_repeats", 3, "Timed calls per side (median).")
_POPULATION = flags.DEFINE_integer("population", 8, "Seeds of the population timed against sequential runs.")
_PEER_ENV = flags.DEFINE_enum("peer_env", "adapter", ["adapter", "gymnasium"], "The peer's env: our "
                              "gymnasium adapter over the gymnax core, or gymnasium's own env of that name.")
_TORCH_THREADS = flags.DEFINE_integer("torch_threads", 1, "torch CPU threads of the peer (1: with 2 on the "
                                      "shared 2-core machine torch spent 10x longer in 64-wide layers).")

# The network every agent gets on CartPole (on top of models.default_model_config()): a 64-wide MLP
# encoder layer, a memoryless 64-wide core layer, one 64-wide hidden layer per head; no dropout.
MODEL = dict(encoder="mlp", core="mlp", hidden_dim=64, encoder_layers=1, n_layers=1, head_layers=1,
             dropout=0.0)
PEER_NET = [64, 64, 64]                 # SB3's hidden layers of the same widths (encoder, core, head)

REFERENCES = {
    "ppo": dict(
        source="PureJaxRL purejaxrl/ppo.py, examples/walkthrough.ipynb (8-seed mean, ent_coef 0.01); "
               "CleanRL ppo.py docs figure (3 seeds)",
        url="https://github.com/luchris429/purejaxrl/blob/main/examples/walkthrough.ipynb ; "
            "https://docs.cleanrl.dev/rl-algorithms/ppo/ (docs/rl-algorithms/ppo/CartPole-v1.png)",
        budget=500_000, cross_target=(200_000, 270_000),
        note="PureJaxRL ~200k-240k env steps to ~475 (4 envs x 50-60k vector steps), CleanRL ~270k; "
             "training-episode returns; read off the figures"),
    "dqn": dict(
        source="CleanRL dqn.py / dqn_jax.py, docs/rl-algorithms/dqn.md (3 seeds)",
        url="https://docs.cleanrl.dev/rl-algorithms/dqn/ (docs/rl-algorithms/dqn/CartPole-v1.png, "
            "dqn/jax/CartPole-v1.png)",
        budget=500_000, cross_target=(270_000, 400_000),
        note="final 488.69 +- 16.11 (dqn.py), 498.38 +- 2.29 (dqn_jax.py); dqn.py crosses ~475 at "
             "~270k-280k, dqn_jax.py peaks ~480 at ~275k, dips, above 475 again after ~400k; "
             "training-episode (epsilon-greedy) returns"),
    "a2c": dict(
        source="rl-baselines3-zoo hyperparams/a2c.yml (CartPole-v1) and benchmark.md",
        url="https://github.com/DLR-RM/rl-baselines3-zoo/blob/master/benchmark.md",
        budget=500_000, cross_target=None,
        note="final 500.0 +- 0.0 (deterministic evaluation, 300 episodes) after 5e5 env steps with 8 envs, "
             "n_steps 5, RMSprop 7e-4, ent_coef 0; no published learning curve found"),
}


# ------------------------------------------------------------------------------------------ configs


def cartpole_overrides(name: str, budget: int, eval_every: int) -> dict:
    """The agent's CartPole settings on top of its default section: the published setups where our
    agent has the knob (REFERENCES), budget-derived schedule lengths, and `iterations_per_call` set so
    one call covers about `eval_every` env steps per seed."""
    if name == "ppo":     # PureJaxRL's ppo.py (critic_epochs 0: it has none)
        o = dict(n_envs=4, n_steps=128, update_epochs=4, n_minibatches=4, critic_epochs=0, gamma=0.99,
                 gae_lambda=0.95, clip_eps=0.2, vf_clip=0.2, ent_coef=0.01, vf_coef=0.5, norm_adv=True,
                 actor_lr=2.5e-4, critic_lr=2.5e-4, actor_schedule="linear", critic_schedule="linear",
                 max_grad_norm=0.5)
    elif name == "a2c":   # rl-baselines3-zoo's CartPole-v1 shape (8 envs x 5 steps, ent_coef 0), but Adam
        # 1.5e-3 decayed linearly over the budget instead of RMSprop 7e-4 (Adam 7e-4 constant was slower)
        o = dict(n_envs=8, n_steps=5, gamma=0.99, gae_lambda=1.0, ent_coef=0.0, vf_coef=0.5, norm_adv=False,
                 actor_lr=1.5e-3, critic_lr=1.5e-3, actor_schedule="linear", critic_schedule="linear",
                 max_grad_norm=0.5)
    elif name == "dqn":   # CleanRL's dqn.py: 4 envs x 25 steps and 10 gradient steps per iteration,
        # target copy every 50 gradient steps (500 env steps); its MSE loss (huber_delta far above any TD
        # error: returns <= 100) and no clipping. Ours adds 3-step returns and the rate's linear decay:
        # with 1-step returns, a constant rate, or the Huber loss, the 5-seed mean stayed below 475
        # (BUILD_NOTES, session 8).
        o = dict(n_envs=4, n_steps=25, buffer_size=10_000, batch_size=128, learning_starts=10_000,
                 utd_ratio=0.1, gamma=0.99, n_step=3, lr=2.5e-4, lr_schedule="linear", tau=1.0,
                 target_period=50, double=False, dueling=False, epsilon_start=1.0, epsilon_end=0.05,
                 huber_delta=1e4, max_grad_norm=1e4)
    else:
        raise ValueError(f"no CartPole settings for agent {name!r}; add them to cartpole_overrides "
                         "(known: ppo, a2c, dqn)")
    per_iteration = o["n_envs"] * o["n_steps"]
    o["iterations_per_call"] = max(1, round(eval_every / per_iteration))
    iterations = math.ceil(budget / per_iteration)
    o["total_updates"] = iterations
    if name == "dqn":     # epsilon decays over half the budget, as CleanRL's exploration_fraction 0.5
        o["epsilon_decay_iterations"] = max(1, iterations // 2)
    return o


# Pendulum-v1 (gymnax): the continuous off-policy agents. Published results found (REFERENCES_PENDULUM):
# rl-baselines3-zoo's benchmark table (final returns after 20k env steps) and rejax's gymnax Pendulum
# configs (10k env steps); CleanRL's benchmarks of td3/sac/ddpg_continuous_action cover MuJoCo only.
REFERENCES_PENDULUM = {
    name: dict(
        source=f"rl-baselines3-zoo benchmark.md ({name} Pendulum-v1, hyperparams/{name}.yml: n_timesteps "
               "20000); rejax configs/gymnax/pendulum.yaml (gymnax Pendulum-v1, total_timesteps 10000 for "
               "sac and td3)",
        url="https://github.com/DLR-RM/rl-baselines3-zoo/blob/master/benchmark.md ; "
            "https://github.com/keraJLi/rejax/blob/main/configs/gymnax/pendulum.yaml",
        budget=20_000, cross_target=None,
        note=f"final {final} (deterministic evaluation, 750 episodes of 150,000 steps) after 20k env steps; "
             "no published Pendulum-v1 learning curve was found (CleanRL's continuous-action benchmarks "
             "are MuJoCo only; rejax publishes the 10k-step configs, no Pendulum figure), so only the "
             "budget and the final figure")
    for name, final in (("sac", "-156.995 +- 88.714"), ("td3", "-151.855 +- 90.227"),
                        ("ddpg", "-152.099 +- 94.282"))}

# Per-env defaults of --target, --budget, --eval_every and the plot's return axis.
ENV_SETTINGS = {
    "CartPole-v1": dict(target=475.0, budget=500_000, eval_every=16_384, ylim=(0, 520),
                        references=REFERENCES),
    "Pendulum-v1": dict(target=-200.0, budget=20_000, eval_every=1_000, ylim=(-1700, 0),
                        references=REFERENCES_PENDULUM),
}


def setting(key: str):
    """--target / --budget / --eval_every where given, else ENV_SETTINGS[--env][key]."""
    flag = {"target": _TARGET, "budget": _BUDGET, "eval_every": _EVAL_EVERY}.get(key)
    if flag is not None and flag.value is not None:
        return flag.value
    return ENV_SETTINGS[_ENV.value][key]


def pendulum_overrides(name: str, budget: int, eval_every: int) -> dict:
    """ddpg / td3 / sac on Pendulum-v1: CleanRL's ddpg/td3/sac_continuous_action.py settings where our
    agent has the knob (batch 256, tau 0.005, gamma 0.99, exploration noise 0.1, policy noise 0.2
    clipped at 0.5, actor and targets every 2nd critic step (ddpg too: CleanRL's policy_frequency 2),
    one gradient step per env step, no gradient clipping, Adam eps 1e-8; SAC: actor 3e-4, critic and
    temperature 1e-3, temperature from 1 (log alpha 0), target entropy -1), with two changes for a
    20k-step budget: learning starts after 1,000 steps (CleanRL's 25k is more than the budget; rejax's
    td3 fills 1,000) and DDPG/TD3 learn at 1e-3 (rl-baselines3-zoo's Pendulum-v1 rate; CleanRL's 3e-4
    is tuned for 1M MuJoCo steps). One env of 32 steps per iteration (CleanRL: one env, a gradient
    step after each step; ours: 32 steps, then 32 gradient steps). The replay holds the whole budget
    (CleanRL's 1M never fills in 20k either)."""
    if name not in ("ddpg", "td3", "sac"):
        raise ValueError(f"no Pendulum-v1 settings for agent {name!r}; add them to pendulum_overrides "
                         "(known: ddpg, td3, sac)")
    o = dict(n_envs=1, n_steps=32, buffer_size=max(budget, 1024), batch_size=256, learning_starts=1_000,
             utd_ratio=1.0, n_step=1, gamma=0.99, tau=0.005, max_grad_norm=1e6, adam_eps=1e-8)
    if name == "sac":
        o.update(actor_lr=3e-4, critic_lr=1e-3, alpha_lr=1e-3, init_alpha=1.0, target_entropy=None)
    else:
        o.update(actor_lr=1e-3, critic_lr=1e-3, exploration_noise=0.1, policy_delay=2)
        if name == "td3":
            o.update(policy_noise=0.2, noise_clip=0.5)
    o["iterations_per_call"] = max(1, round(eval_every / (o["n_envs"] * o["n_steps"])))
    return o


def env_overrides(name: str, budget: int, eval_every: int) -> dict:
    """The agent's settings for --env: cartpole_overrides or pendulum_overrides."""
    if _ENV.value == "Pendulum-v1":
        return pendulum_overrides(name, budget, eval_every)
    return cartpole_overrides(name, budget, eval_every)


def agent_config(name: str, overrides: dict):
    """ConfigDict: seed, agent.name, model (defaults + MODEL), the agent's section + `overrides`."""
    import ml_collections

    from jaxtrade.agents import registry
    from jaxtrade.models import default_model_config

    section = registry.default_config(name)
    unknown = sorted(set(overrides) - set(section))
    if unknown:
        raise ValueError(f"override(s) {[f'{name}.{k}' for k in unknown]} are not keys of the "
                         f"{name} section; it has {sorted(section)}")
    section.update(overrides)
    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.agent = ml_collections.ConfigDict(dict(name=name))
    cfg.model = default_model_config()
    cfg.model.update(MODEL)
    cfg[name] = section
    return cfg


def check_registered(names) -> None:
    """SystemExit naming every requested agent the registry does not know."""
    from jaxtrade.agents import registry

    missing = [n for n in names if n not in registry.registered()]
    if missing:
        raise SystemExit(f"agent(s) {missing} are not registered (registered: {list(registry.registered())});"
                         " register them in jaxtrade/agents/__init__.py or drop them from --agents")


# --------------------------------------------------------------------------------------- learning


def make_greedy_eval(agent, env, env_params, n_episodes: int, max_steps: int):
    """jitted fn(params [K, ...], key) -> float32 [K]: each member's mean return over `n_episodes`
    greedy episodes (the first episode of each of n_episodes envs, `max_steps` steps long at most)."""
    import jax
    import jax.numpy as jnp

    def member(params, key):
        policy = agent.policy(params, deterministic=True)
        reset_key, run_key = jax.random.split(key)
        obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(reset_key, n_episodes), env_params)
        carry = jax.tree.map(lambda x: jnp.broadcast_to(x, (n_episodes,) + jnp.shape(x)), policy.init())

        def body(c, key_t):
            obs, state, carry, ended, ret = c
            act_keys, step_keys = jax.random.split(key_t, (2, n_episodes))
            action, carry = jax.vmap(policy.act)(act_keys, carry, obs)
            obs, state, reward, done, _ = jax.vmap(env.step, (0, 0, 0, None))(step_keys, state, action,
                                                                                 env_params)
            ret = ret + jnp.where(ended, 0.0, reward)
            return (obs, state, carry, ended | done, ret), None

        init = (obs, state, carry, jnp.zeros((n_episodes,), bool), jnp.zeros((n_episodes,), jnp.float32))
        (_, _, _, ended, ret), _ = jax.lax.scan(body, init, jax.random.split(run_key, max_steps))
        return jnp.mean(ret)

    return jax.jit(lambda params, key: jax.vmap(member)(params, jax.random.split(key, jax.tree.leaves(
        params)[0].shape[0])))


class SeedRuns:
    """The seeds as one population (`init_seeds`, `make_population_iteration`) where the agent supports
    it, else one run per seed after another (said loudly); `step` gives metrics [n_dev, K, ...] and
    `params` leaves [K, ...] either way."""

    def __init__(self, agent, seeds, env_params, devices):
        self.agent = agent
        try:
            self.states = [agent.init_seeds(seeds, env_params, devices)]
            self.fn = agent.make_population_iteration(devices)
            self.population = True
        except (AttributeError, NotImplementedError) as err:
            print(f"  !! {agent.name}: no population ({err}); running the {len(seeds)} seeds one after "
                  "another", flush=True)
            self.states = [agent.init(s, env_params, devices) for s in seeds]
            self.fn = agent.make_iteration(devices)
            self.population = False

    def step(self, env_params) -> dict:
        import jax
        import numpy as np

        out = []
        for i, state in enumerate(self.states):
            self.states[i], metrics = self.fn(state, env_params)
            out.append(jax.device_get(metrics))
        if self.population:
            return out[0]
        return jax.tree.map(lambda *xs: np.stack(xs, axis=1), *out)       # [n_dev, K, ...]

    def params(self):
        import jax
        import jax.numpy as jnp

        if self.population:
            return self.agent.params(self.states[0])
        return jax.tree.map(lambda *xs: jnp.stack(xs), *[self.agent.params(s) for s in self.states])


def _per_member(x):
    """metrics leaf [n_dev, K] or [n_dev, K, k] -> numpy [K] summed over the call's iterations."""
    import numpy as np

    x = np.asarray(x)[0]
    return x.reshape(x.shape[0], -1).sum(axis=1)


def first_crossing(steps, values, target: float):
    for s, v in zip(steps, values, strict=True):
        if v == v and v >= target:
            return int(s)
    return None


def stays_from(steps, values, target: float):
    """The env steps from which every later value is >= target (None if the last is below it): a
    first crossing can be followed by a collapse."""
    start = None
    for s, v in zip(steps, values, strict=True):
        if v == v and v >= target:
            start = int(s) if start is None else start
        else:
            start = None
    return start


def learn(name: str) -> dict:
    import jax
    import numpy as np

    from jaxtrade.agents import registry
    from jaxtrade.envs.gymnax import make_gymnax

    env, env_params = make_gymnax(_ENV.value)
    budget, target = setting("budget"), setting("target")
    overrides = env_overrides(name, budget, setting("eval_every"))
    cfg = agent_config(name, overrides)
    agent = registry.make_agent(cfg, env, env_name=_ENV.value)
    devices = jax.local_devices()[:1]
    seeds = list(range(_SEEDS.value))
    steps_per_call = agent.env_steps_per_iteration(1) * overrides["iterations_per_call"]
    calls = math.ceil(budget / steps_per_call)
    print(f"\n{name}: {len(seeds)} seeds as one population, {calls} calls x {steps_per_call} env steps per "
          f"seed (budget {calls * steps_per_call:,}), overrides {json.dumps(overrides)}", flush=True)
    evaluate = make_greedy_eval(agent, env, env_params, _EVAL_EPISODES.value,
                                int(env_params.max_steps_in_episode))
    eval_key = jax.random.key(10_000)
    t0 = time.perf_counter()
    seeds_run = SeedRuns(agent, seeds, env_params, devices)
    rows = []
    env_steps = 0
    compile_s = None
    for call in range(calls):
        tc = time.perf_counter()
        metrics = seeds_run.step(env_params)
        metrics = jax.device_get(metrics)
        if compile_s is None:
            compile_s = time.perf_counter() - tc
        env_steps += int(_per_member(metrics["env_steps"])[0])
        episodes = _per_member(metrics["episodes"])
        with np.errstate(invalid="ignore", divide="ignore"):
            train = _per_member(metrics["episode_return_sum"]) / episodes
        greedy = np.asarray(evaluate(seeds_run.params(), jax.random.fold_in(eval_key, call)))
        rows.append(dict(env_steps=env_steps, wall_s=time.perf_counter() - t0, train=train.tolist(),
                         greedy=greedy.tolist(), episodes=episodes.tolist()))
        print(f"  {name} {env_steps:>9,} env steps/seed  train {np.nanmean(train):6.1f}  greedy "
              f"{greedy.mean():6.1f}  ({time.perf_counter() - t0:6.1f} s)", flush=True)
        if _STOP.value and np.nanmean(train) >= target and greedy.mean() >= target:
            break
    wall = time.perf_counter() - t0
    steps = [r["env_steps"] for r in rows]
    train_mean = [float(np.nanmean(r["train"])) for r in rows]
    greedy_mean = [float(np.mean(r["greedy"])) for r in rows]
    return dict(agent=name, env=_ENV.value, seeds=seeds, population=seeds_run.population, overrides=overrides,
                model=MODEL,
                env_steps=steps, train_return_mean=train_mean, greedy_return_mean=greedy_mean,
                train_return_per_seed=[r["train"] for r in rows],
                greedy_return_per_seed=[r["greedy"] for r in rows], wall_s_at=[r["wall_s"] for r in rows],
                steps_to_target_train=first_crossing(steps, train_mean, target),
                steps_to_target_greedy=first_crossing(steps, greedy_mean, target),
                stays_above_train_from=stays_from(steps, train_mean, target),
                stays_above_greedy_from=stays_from(steps, greedy_mean, target),
                wall_s=wall, first_call_s=compile_s, total_env_steps=steps[-1] * len(seeds),
                env_steps_per_s=steps[-1] * len(seeds) / wall, target=target,
                reference=setting("references").get(name))


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.2), squeeze=False)
    for ax, r in zip(axes[0], results, strict=True):
        steps = np.asarray(r["env_steps"])
        per_seed = np.asarray(r["train_return_per_seed"], dtype=float)
        for i in range(per_seed.shape[1]):
            ax.plot(steps, per_seed[:, i], color="tab:blue", alpha=0.25, lw=0.8)
        ax.plot(steps, r["train_return_mean"], color="tab:blue", lw=2, label="training episodes, seed mean")
        ax.plot(steps, r["greedy_return_mean"], color="tab:green", lw=2, ls="--", label="greedy, seed mean")
        ax.axhline(r["target"], color="grey", lw=0.8, ls=":")
        ref = r.get("reference") or {}
        if ref.get("cross_target"):
            lo, hi = ref["cross_target"]
            ax.axvspan(lo, hi, color="tab:orange", alpha=0.15,
                       label=f"published ~{r['target']:.0f} crossing")
        ax.set_title(f"{r['agent']} on {r['env']}, {len(r['seeds'])} seeds")
        ax.set_xlabel("env steps per seed")
        ax.set_ylabel("episode return")
        ax.set_ylim(*ENV_SETTINGS[r["env"]]["ylim"])
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ speed

OFFPOLICY = ("sac", "td3")     # timed on the portfolio env (env.action_space=weights), not on --env


def portfolio_speed_overrides(name: str) -> dict:
    """sac / td3 on the portfolio env, both sides: 4 envs x 16 steps per iteration (SB3: train_freq 16
    steps of its 4-env DummyVecEnv), a gradient step per 4 env steps (16 per iteration), batch 256,
    replay 4,096 (each transition holds two 30 x 183 windows: ~44 KB), Adam 3e-4 everywhere (SB3's
    default rate), no gradient clipping (SB3 clips none), tau 0.005, gamma 0.99; TD3: exploration
    noise 0.1, policy noise 0.2 clipped at 0.5, delay 2; SAC: temperature from 0.1, learned, target
    entropy -21 (SB3's ent_coef "auto_0.1", target_entropy "auto")."""
    o = dict(n_envs=4, n_steps=16, buffer_size=4096, batch_size=256, learning_starts=1024, utd_ratio=0.25,
             n_step=1, gamma=0.99, tau=0.005, actor_lr=3e-4, critic_lr=3e-4, max_grad_norm=1e6, adam_eps=1e-8)
    if name == "sac":
        o.update(alpha_lr=3e-4, init_alpha=0.1, target_entropy=None)
    elif name == "td3":
        o.update(exploration_noise=0.1, policy_noise=0.2, noise_clip=0.5, policy_delay=2)
    else:
        raise ValueError(f"no portfolio speed settings for {name!r} (sac | td3)")
    return o


def speed_env(name: str):
    """(env, env_params, env name) the speed part of `name` runs on: the portfolio env with continuous
    weights for sac/td3 (sp500-20, 1997-2014, `--portfolio_window`), gymnax --env otherwise."""
    if name in OFFPOLICY:
        data = common.load_env_data("sp500-20", lookback=30)
        env, env_params = common.make_env("portfolio", data, action_space="weights",
                                          window=_PORTFOLIO_WINDOW.value)
        return env, env_params, "portfolio"
    from jaxtrade.envs.gymnax import make_gymnax

    env, env_params = make_gymnax(_ENV.value)
    return env, env_params, _ENV.value


def _peer_venv(env, env_params, env_name: str, n_envs: int):
    """n_envs gymnasium envs in a DummyVecEnv: adapters (`GymEnv` + `FlattenObservation`; for the
    portfolio's unbounded weight logits an ActionWrapper giving SB3 a [-1, 1] Box and the env 4 x it,
    our agents' own map `offpolicy.to_env_action`) or gymnasium's own env (`--peer_env`)."""
    import gymnasium
    import numpy as np
    from gymnasium.wrappers import FlattenObservation
    from stable_baselines3.common.vec_env import DummyVecEnv

    from jaxtrade.agents.offpolicy import UNBOUNDED_SCALE
    from jaxtrade.envs.gym import GymEnv

    class SquashedLogits(gymnasium.ActionWrapper):
        def __init__(self, inner):
            super().__init__(inner)
            self.action_space = gymnasium.spaces.Box(-1.0, 1.0, inner.action_space.shape, np.float32)

        def action(self, action):
            return (UNBOUNDED_SCALE * np.asarray(action, np.float32)).astype(np.float32)

    def one(i):
        e = FlattenObservation(GymEnv(env, env_params, seed=i))
        if isinstance(e.action_space, gymnasium.spaces.Box) and not np.all(np.isfinite(e.action_space.high)):
            e = SquashedLogits(e)
        return e

    if _PEER_ENV.value == "gymnasium" and env_name != "portfolio":     # no jax call per env step
        return DummyVecEnv([lambda: gymnasium.make(env_name) for _ in range(n_envs)])
    return DummyVecEnv([lambda i=i: one(i) for i in range(n_envs)])


def _peer(name: str, overrides: dict, env, env_params, env_name: str, learning_starts: int):
    """(stable-baselines3 model over `_peer_venv`, env steps of one SB3 rollout)."""
    import numpy as np
    import torch

    torch.set_num_threads(_TORCH_THREADS.value)
    n_envs, n_steps = overrides["n_envs"], overrides["n_steps"]
    venv = _peer_venv(env, env_params, env_name, n_envs)
    if name == "dqn":
        from stable_baselines3 import DQN

        model = DQN("MlpPolicy", venv, learning_rate=overrides["lr"], buffer_size=overrides["buffer_size"],
                    learning_starts=learning_starts, batch_size=overrides["batch_size"], tau=overrides["tau"],
                    gamma=overrides["gamma"], n_steps=overrides["n_step"], train_freq=(n_steps, "step"),
                    gradient_steps=round(overrides["utd_ratio"] * n_envs * n_steps),
                    target_update_interval=overrides["target_period"] * round(1 / overrides["utd_ratio"]),
                    exploration_fraction=0.5, exploration_final_eps=overrides["epsilon_end"],
                    max_grad_norm=overrides["max_grad_norm"],
                    policy_kwargs=dict(net_arch=PEER_NET), device="cpu", seed=0)
    elif name == "ppo":
        from stable_baselines3 import PPO

        batch = n_envs * n_steps // overrides["n_minibatches"]
        model = PPO("MlpPolicy", venv, learning_rate=overrides["actor_lr"], n_steps=n_steps, batch_size=batch,
                    n_epochs=overrides["update_epochs"], gamma=overrides["gamma"],
                    gae_lambda=overrides["gae_lambda"], clip_range=overrides["clip_eps"],
                    ent_coef=overrides["ent_coef"], vf_coef=overrides["vf_coef"],
                    max_grad_norm=overrides["max_grad_norm"],
                    policy_kwargs=dict(net_arch=dict(pi=PEER_NET, vf=PEER_NET)), device="cpu", seed=0)
    elif name in OFFPOLICY:     # the same replay, batch, rates, targets and gradient steps per env step
        common_kw = dict(learning_rate=overrides["actor_lr"], buffer_size=overrides["buffer_size"],
                         learning_starts=learning_starts, batch_size=overrides["batch_size"],
                         tau=overrides["tau"], gamma=overrides["gamma"], train_freq=(n_steps, "step"),
                         gradient_steps=round(overrides["utd_ratio"] * n_envs * n_steps),
                         policy_kwargs=dict(net_arch=dict(pi=PEER_NET, qf=PEER_NET)), device="cpu", seed=0)
        if name == "sac":
            from stable_baselines3 import SAC

            model = SAC("MlpPolicy", venv, ent_coef="auto_0.1", target_entropy="auto", **common_kw)
        else:
            from stable_baselines3 import TD3
            from stable_baselines3.common.noise import NormalActionNoise

            dim = venv.action_space.shape[0]
            noise = NormalActionNoise(np.zeros(dim), overrides["exploration_noise"] * np.ones(dim))
            model = TD3("MlpPolicy", venv, policy_delay=overrides["policy_delay"],
                        target_policy_noise=overrides["policy_noise"],
                        target_noise_clip=overrides["noise_clip"], action_noise=noise, **common_kw)
    else:
        raise ValueError(f"no stable-baselines3 peer for {name!r} (dqn | ppo | sac | td3)")
    return model, n_envs * n_steps


def peer_env_seconds(venv, steps: int) -> float:
    """Seconds the peer's DummyVecEnv alone takes for `steps` env steps of random actions (what bounds
    SB3 on the adapter: each env step is a jitted jax call from Python)."""
    import numpy as np

    n = venv.num_envs
    venv.action_space.seed(0)
    venv.reset()
    t0 = time.perf_counter()
    for _ in range(math.ceil(steps / n)):
        venv.step(np.stack([venv.action_space.sample() for _ in range(n)]))
    return time.perf_counter() - t0


def replay_breakdown(name: str, overrides: dict, env, env_params, devices, s_per_step: float) -> dict:
    """Where one seed's time goes (dqn, sac, td3): the same run with one gradient step per iteration
    (the least utd_ratio allows) is timed too; time per env step = collect + utd_ratio x (one gradient
    step), two points give both, and the update's share of the timed run."""
    import jax
    import numpy as np

    from jaxtrade.agents import registry

    per_iteration = overrides["n_envs"] * overrides["n_steps"]
    u0, u1 = 1 / per_iteration, overrides["utd_ratio"]
    agent = registry.make_agent(agent_config(name, dict(overrides, utd_ratio=u0)), env)
    fn, box = agent.make_iteration(devices), {"state": agent.init(0, env_params, devices)}

    def call():
        box["state"], metrics = fn(box["state"], env_params)
        return metrics

    jax.block_until_ready(call())
    t0 = float(np.median([common.timed(call)[0] for _ in range(_SPEED_REPEATS.value)]))
    t0 /= overrides["iterations_per_call"] * per_iteration
    grad_step = (s_per_step - t0) / (u1 - u0)
    collect = t0 - u0 * grad_step
    out = dict(us_per_env_step=1e6 * s_per_step, collect_us_per_env_step=1e6 * collect,
               us_per_gradient_step=1e6 * grad_step, update_share=u1 * grad_step / s_per_step,
               steps_per_s_one_update_per_iteration=1 / t0)
    print(f"  jaxtrade {name}, where one seed's time goes: {out['us_per_env_step']:.1f} us per env step = "
          f"collection {out['collect_us_per_env_step']:.1f} us + {u1} x {out['us_per_gradient_step']:.0f} us "
          "per gradient step "
          f"(updates {100 * out['update_share']:.0f}%; with 1 gradient step per iteration "
          f"{out['steps_per_s_one_update_per_iteration']:,.0f} env steps/s)", flush=True)
    return out


def speed(name: str) -> dict:
    import jax
    import numpy as np

    from jaxtrade.agents import registry

    env, env_params, env_name = speed_env(name)
    if name in OFFPOLICY:
        overrides = portfolio_speed_overrides(name)
    else:
        overrides = cartpole_overrides(name, setting("budget"), setting("eval_every"))
    per_iteration = overrides["n_envs"] * overrides["n_steps"]
    overrides["iterations_per_call"] = max(1, _SPEED_STEPS.value // per_iteration)
    steps = overrides["iterations_per_call"] * per_iteration           # env steps of one timed call
    learning_starts = 0
    if "learning_starts" in overrides:   # passed in the warm-up call: every timed step trains
        learning_starts = min(overrides["learning_starts"], steps // 2)
        overrides["learning_starts"] = learning_starts
    agent = registry.make_agent(agent_config(name, overrides), env,
                                env_name=None if env_name == "portfolio" else env_name)
    devices = jax.local_devices()[:1]
    k = _POPULATION.value
    with_population = k > 1 and (not _POPULATION_AGENTS.value or name in _POPULATION_AGENTS.value)
    print(f"\nspeed: {name} on {env_name}, {steps:,} env steps per timed call per seed, overrides "
          f"{json.dumps(overrides)}, median of {_SPEED_REPEATS.value}", flush=True)

    def call(fn, box):
        box["state"], metrics = fn(box["state"], env_params)
        return metrics

    single = agent.make_iteration(devices)
    seq = [{"state": agent.init(s, env_params, devices)} for s in range(k if with_population else 1)]
    t0 = time.perf_counter()
    for box in seq:                               # the first compiles; each fills its own buffer
        jax.block_until_ready(call(single, box))
    warm_single = time.perf_counter() - t0
    warm_pop = None
    if with_population:
        pop = {"state": agent.init_seeds(list(range(k)), env_params, devices)}
        population = agent.make_population_iteration(devices)
        t0 = time.perf_counter()
        jax.block_until_ready(call(population, pop))
        warm_pop = time.perf_counter() - t0
    one, seq_times, pop_times = [], [], []
    for _ in range(_SPEED_REPEATS.value):
        times = [common.timed(lambda b=b: call(single, b))[0] for b in seq]
        one.append(times[0])
        seq_times.append(sum(times))
        if with_population:
            pop_times.append(common.timed(lambda: call(population, pop))[0])
    one_s = float(np.median(one))
    out = dict(agent=name, env=env_name, env_steps_per_call=steps, overrides=overrides, model=MODEL,
               jaxtrade_steps_per_s=steps / one_s, jaxtrade_call_s=one, warmup_single_s=warm_single,
               load=common.load())
    line = f"  jaxtrade {name}, one seed: {out['jaxtrade_steps_per_s']:,.0f} env steps/s"
    if with_population:
        seq_s, pop_s = float(np.median(seq_times)), float(np.median(pop_times))
        out.update(population=k, sequential_steps_per_s=k * steps / seq_s,
                   population_steps_per_s=k * steps / pop_s,
                   population_speedup=seq_s / pop_s, sequential_call_s=seq_times, population_call_s=pop_times,
                   warmup_population_s=warm_pop)
        line += (f"; population of {k}: {out['population_steps_per_s']:,.0f} env steps/s vs {k} sequential "
                 "runs "
                 f"{out['sequential_steps_per_s']:,.0f}: x{out['population_speedup']:.2f}")
    print(line + f"  (load {out['load']:.1f})", flush=True)
    if name in ("dqn", *OFFPOLICY):
        out["breakdown"] = replay_breakdown(name, overrides, env, env_params, devices, one_s / steps)

    missing = [m for m in ("torch", "stable_baselines3", "gymnasium") if importlib.util.find_spec(m) is None]
    if missing:
        bar = "!" * 100
        print(f"\n{bar}\n!! stable-baselines3 comparison SKIPPED: {', '.join(missing)} not installed; "
              f"pip install -e '.[peer]' (torch CPU, stable-baselines3) to run it\n{bar}", flush=True)
        out["peer"] = None
        return out
    model, rollout = _peer(name, overrides, env, env_params, env_name, learning_starts)
    t0 = time.perf_counter()
    model.learn(total_timesteps=max(steps, learning_starts + rollout))        # warm-up: fills the buffer
    peer_warm = time.perf_counter() - t0
    peer_times = []
    for _ in range(_SPEED_REPEATS.value):
        t0 = time.perf_counter()
        model.learn(total_timesteps=steps, reset_num_timesteps=False)
        peer_times.append(time.perf_counter() - t0)
    peer_steps = math.ceil(steps / rollout) * rollout                  # SB3 finishes whole rollouts
    peer_s = float(np.median(peer_times))
    env_s = float(np.median([peer_env_seconds(_peer_venv(env, env_params, env_name, overrides["n_envs"]),
                                              peer_steps) for _ in range(_SPEED_REPEATS.value)]))
    out["peer"] = dict(library="stable-baselines3", algo=type(model).__name__, net_arch=PEER_NET,
                       env=_PEER_ENV.value if env_name != "portfolio" else "adapter",
                       n_envs=overrides["n_envs"], env_steps_per_call=peer_steps, call_s=peer_times,
                       steps_per_s=peer_steps / peer_s, warmup_s=peer_warm, env_only_s=env_s,
                       env_share=env_s / peer_s, load=common.load())
    out["jaxtrade_over_peer"] = out["jaxtrade_steps_per_s"] / out["peer"]["steps_per_s"]
    own = _PEER_ENV.value == "gymnasium" and env_name != "portfolio"
    peer_env = "gymnasium envs" if own else "GymEnv adapters"
    line = (f"  stable-baselines3 {type(model).__name__} ({overrides['n_envs']} {peer_env} on {env_name} in "
            "a "
            f"DummyVecEnv): {out['peer']['steps_per_s']:,.0f} env steps/s (its envs alone, random actions: "
            f"{100 * out['peer']['env_share']:.0f}% of that time); jaxtrade one seed "
            f"x{out['jaxtrade_over_peer']:.1f}")
    if with_population:
        out["population_over_peer"] = out["population_steps_per_s"] / out["peer"]["steps_per_s"]
        line += f", population of {k} x{out['population_over_peer']:.1f}"
    print(line + f"  (load {out['peer']['load']:.1f})", flush=True)
    return out


# ------------------------------------------------------------------------------------------- main


def main(argv):
    del argv
    out_dir = Path(_OUT.value)
    out_dir.mkdir(parents=True, exist_ok=True)
    requested = list(_AGENTS.value) if _LEARN.value else []
    if _SPEED.value:
        requested.extend(_SPEED_AGENT.value)
    check_registered(sorted(set(requested)))
    print(f"benchmarks.agents on {common.machine_line()}; env {_ENV.value}; model {json.dumps(MODEL)}",
          flush=True)
    report = dict(machine=common.machine_line(), env=_ENV.value, target=setting("target"), model=MODEL,
                  references=setting("references"), learning=[], speed=None)
    if _LEARN.value:
        for name in _AGENTS.value:
            report["learning"].append(learn(name))
            plot(report["learning"], out_dir / "learning_curves.png")
        print(f"\n{_ENV.value} learning, {_SEEDS.value} seeds, target {setting('target'):.0f} (env steps per "
              "seed):")
        for r in report["learning"]:
            ref = r["reference"] or {}
            print(f"  {r['agent']:4} training-episode mean reaches it at {r['steps_to_target_train']} "
                  f"(stays above from {r['stays_above_train_from']}), greedy at "
                  f"{r['steps_to_target_greedy']} (stays from {r['stays_above_greedy_from']}); "
                  f"final train {r['train_return_mean'][-1]:.1f}, greedy "
                  f"{r['greedy_return_mean'][-1]:.1f} after {r['env_steps'][-1]:,}; {r['wall_s']:.0f} s wall "
                  f"({r['env_steps_per_s']:,.0f} env steps/s, all seeds)")
            print(f"       published: {ref.get('source')}, budget {ref.get('budget', 0):,}: {ref.get('note')}"
                  f" [{ref.get('url')}]")
    if _SPEED.value:
        report["speed"] = [speed(name) for name in _SPEED_AGENT.value]
    path = out_dir / "agents.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {path}" + (f" and {out_dir / 'learning_curves.png'}" if report["learning"] else ""))


if __name__ == "__main__":
    app.run(main)
