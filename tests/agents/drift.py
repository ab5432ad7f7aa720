"""The `drift` probe's learning check, shared by every agent's learning test: the env, its closed-form
optimum (long from the first step, held: episode_length * drift - cost) and the value of each
population member's deterministic policy over one noiseless episode, as a fraction of that optimum."""

from jaxtrade.envs.probes import drift_fraction_of_optimum, drift_optimal_value, make_probe

LENGTH = 16


def drift_problem(length: int = LENGTH):
    """(env, env_params, optimum) of the drift probe the learning tests use (optimum 0.14)."""
    env, env_params = make_probe("drift", episode_length=length, drift=0.01, noise=0.02, cost=0.02)
    return env, env_params, drift_optimal_value(env_params)


def fraction_of_optimum(agent, env, env_params, length: int = LENGTH):
    """jitted fn(params with leaves [K, ...]) -> [K]: each member's deterministic episode return
    (noise off: expected returns) / the optimum (`probes.drift_fraction_of_optimum`)."""
    return drift_fraction_of_optimum(agent.policy, env, env_params, length)
