"""Helpers for the environment tests (a uniquely named module: `conftest` names clash across test dirs)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxtrade.data.envdata import EnvData


def rolling_factors(close: np.ndarray, n: int = 20):
    """Causal momentum, volatility and Sharpe of log returns over the last n rows (fewer at the start,
    so that even the first rows rank assets, unlike the data layer's warm-up)."""
    import pandas as pd

    logp = np.log(close)
    mom = logp - logp[np.maximum(np.arange(len(close)) - n, 0)]
    logret = pd.DataFrame(np.diff(logp, axis=0, prepend=logp[:1]))
    vol = logret.rolling(n, min_periods=2).std(ddof=0).fillna(0.0).to_numpy()
    mean = logret.rolling(n, min_periods=1).mean().to_numpy()
    sharpe = np.where(vol > 0, mean / np.where(vol > 0, vol, 1.0), 0.0)
    return mom, vol, sharpe


# The regulatory fee row hand-built test data carries on every date (EnvData.fees): SEC $27.80 per $1M
# sold, FINRA TAF $0.000166 per share capped at $8.30, options TAF $0.00279 per contract.
TEST_FEE_ROW = (27.8e-6, 0.000166, 8.30, 0.00279)


def envdata_from_close(close, *, start: int, features=None, market=None, turbulence=None,
                       threshold=np.inf, volume=None, seed=0) -> EnvData:
    """EnvData from a [T, N] close array whose first `start` rows are history (`EnvData.start`);
    features/market default to random causal-looking noise."""
    close = np.asarray(close, np.float64)
    t, n = close.shape
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(t, n, 3)) if features is None else features
    market = rng.normal(size=(t, 2)) if market is None else market
    turbulence = rng.gamma(2.0, 1.0, size=t) if turbulence is None else turbulence
    mom, vol, sharpe = rolling_factors(close)
    has_volume = volume is not None
    volume = np.zeros_like(close) if volume is None else volume
    f = lambda x: jnp.asarray(x, jnp.float32)
    return EnvData(close=f(close), open=f(close), high=f(close), low=f(close), volume=f(volume),
                   features=f(features), market=f(market), turbulence=f(turbulence), momentum=f(mom),
                   volatility=f(vol), sharpe=f(sharpe), size=f(close * (1 + np.arange(n))),
                   turbulence_threshold=f(threshold), fees=f(np.tile(TEST_FEE_ROW, (t, 1))), start=start,
                   has_volume=has_volume,
                   has_size=True)   # a synthetic size score, so regime 8 ranks by it


def synthetic_close(t=96, n=4, seed=0, sigma=0.02):
    rng = np.random.default_rng(seed)
    return 50.0 * np.exp(np.cumsum(rng.normal(0.0003, sigma, (t, n)), axis=0))


def make_rollout(env, n_envs: int, n_steps: int, *, discrete: bool | None = None):
    """jit(params, key) -> (states, rewards, dones, infos, obs_state) of `n_steps` random actions,
    each leaf [n_steps, n_envs, ...]; states are those `step` returns (auto-reset where done).
    Observation windows are not kept (too big); obs["state"] is."""
    discrete = env.discrete if discrete is None else discrete
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def run(params, key):
        reset_key, key = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, n_envs), params)

        def body(state, key):
            act_key, step_key = jax.random.split(key)
            if discrete:
                action = jax.random.randint(act_key, (n_envs,), 0, env.action_dim)
            else:
                action = 3.0 * jax.random.normal(act_key, (n_envs, env.action_dim))
            obs, state, reward, done, info = step(jax.random.split(step_key, n_envs), state, action, params)
            info = {k: v for k, v in info.items() if k != "final_obs"}
            return state, (state, reward, done, info, obs["state"])

        _, out = jax.lax.scan(body, state, jax.random.split(key, n_steps))
        return out

    return jax.jit(run)


def run_actions(reset, step, params, actions, key=0):
    """Reset with key, then step through `actions`; returns [(obs, state, reward, done, info)]."""
    obs, state = reset(jax.random.key(key), params)
    out = [(obs, state, None, None, None)]
    for i, a in enumerate(actions):
        obs, state, r, d, info = step(jax.random.key(1000 + i), state, jnp.asarray(a), params)
        out.append((obs, state, r, d, info))
    return out


def perturb_rows(data, cut, *, prices=True, seed=1):
    """Every array's rows >= cut replaced by random other values that reshuffle cross-asset ranks
    (positive fields stay positive). prices=False leaves close/open/high/low/volume alone."""
    rng = np.random.default_rng(seed)
    positive = {"close", "open", "high", "low", "volume", "turbulence", "volatility", "size"}

    def bump(name):
        x = np.array(getattr(data, name), np.float64)
        noise = rng.normal(size=x[cut:].shape)
        x[cut:] = x[cut:] * np.exp(0.5 * noise) if name in positive else x[cut:] + noise * (x.std() + 1)
        return jnp.asarray(x, jnp.float32)

    fields = ["features", "market", "turbulence", "momentum", "volatility", "sharpe", "size"]
    if prices:
        fields += ["close", "open", "high", "low", "volume"]
    return data.replace(**{f: bump(f) for f in fields})


# Spread and commission only (bps of |traded value|), every other cost model off, all given
# explicitly (robust to changing defaults); `fill_ledger` charges LEDGER_BPS per fill: the commission
# and half of the quoted spread, 7 + 18 / 2 = 16 bps.
LEDGER_COSTS = dict(commission_bps=7.0, commission_per_share=0.0, spread_bps=18.0, spread_abs=0.0,
                    slippage_bps=0.0, impact_model="none", regulatory_fees="none")
LEDGER_BPS = 16.0


def fill_ledger(close, start: int, targets, *, cash: float, cost_bps: float):
    """A plain-Python ledger, independent of the env: the trade of step k fills at close[start + k] to
    target fractions targets[k] [N] of the value before it (None: no trade) and pays cost_bps of
    |traded value| from cash; the book is then marked at close[start + k + 1].
    -> per step dicts of value_before, costs, turnover, weights (after the trade, cash last), value."""
    close = np.asarray(close, np.float64)
    holdings = np.zeros(close.shape[1])
    out = []
    for k, target in enumerate(targets):
        price, price_next = close[start + k], close[start + k + 1]
        value0 = cash + holdings @ price
        shares = np.zeros_like(holdings) if target is None else np.asarray(target) * value0 / price - holdings
        traded = shares * price
        cost = cost_bps * 1e-4 * np.abs(traded).sum()
        cash -= traded.sum() + cost
        holdings = holdings + shares
        post = np.append(holdings * price, cash)
        out.append(dict(value_before=value0, costs=cost, turnover=np.abs(traded).sum() / value0,
                        weights=post / post.sum(), value=cash + holdings @ price_next))
    return out
