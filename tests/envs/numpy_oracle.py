"""A plain numpy, float64, one-environment `portfolio` env: the oracle the JAX env is pinned to.

Written from the timing contract in `jaxtrade.envs.market` (the five steps) and the regime table in
`jaxtrade.envs.portfolio`, without importing either (only numpy): regime targets from row t-1's
factor scores (top-k by a stable argsort, ties to the lower index) or softmax weights, the turbulence
gate of row t-1, the trade at close[t] with every cost model of `jaxtrade.envs.costs` and the cash
floor, trade PnL bookkeeping, the mark at close[t+1], the reward models of `jaxtrade.envs.rewards`
and the [W, N*F + M] observation window. `tests/envs/test_numpy_oracle.py` checks it against the
JAX env step by step; `benchmarks/env.py` times it as the "users write a gym-style env" reference.

    oracle = NumpyPortfolio(data, params)       # EnvData, PortfolioParams (read once, as numpy)
    obs = oracle.reset(u=0.3)                   # u ~ uniform[0, 1) picks the start row, as the env
    obs, reward, done, info = oracle.step(action, u=slippage_draws)   # u: [N] (default: own rng)
"""

from __future__ import annotations

import math

import numpy as np

# Per regime: cash share; the factor that picks the sleeve (None = all assets) and the group size.
_CASH = (0.0, 1.0, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.3, 0.0)
_GROUP = {5: ("momentum", "half"), 6: ("low_vol", "half"), 7: ("sharpe", "half"), 8: ("small", "half"),
          9: ("momentum", "half"), 10: ("sharpe", "half"), 11: ("momentum", "top30")}
_CASH_MARGIN = 1e-5
BPS = 1e-4


class NumpyPortfolio:
    """The `portfolio` env ("regimes" or "weights" actions) for one environment, in float64 numpy.

    The core env: `step` never resets by itself unless `auto_reset=True` (then a finished episode
    restarts from a row drawn with the oracle's own rng, as users' gym loops do).
    """

    def __init__(self, data, params, *, action_space: str = "regimes", seed: int = 0,
                 auto_reset: bool = False):
        g = lambda x: np.asarray(x, np.float64)
        self.close, self.features, self.market = g(data.close), g(data.features), g(data.market)
        self.volume = g(data.volume)
        self.turb, self.mom, self.vol = g(data.turbulence), g(data.momentum), g(data.volatility)
        # Regime 8: smallest by the point-in-time size proxy; without one (adjusted close-only
        # data), REVERSAL: smallest 20-row momentum.
        self.sharpe, self.size = g(data.sharpe), g(data.size if data.has_size else data.momentum)
        self.thr = float(params.turbulence_threshold)
        c = params.costs
        self.comm, self.comm_share = float(c.commission_bps) * BPS, float(c.commission_per_share)
        self.spread, self.spread_abs = float(c.spread_bps) * BPS, float(c.spread_abs)
        self.slip = float(c.slippage_bps) * BPS
        self.impact, self.impact_y = float(c.impact_coef), float(c.impact_y)
        self.impact_model, self.assumed_adv = c.impact_model, float(c.assumed_adv_value)
        if c.regulatory_fees == "us_schedule":               # the date's row of the fee table
            self.fees = np.asarray(data.fees, np.float64)[:, :3]
        else:                                                # one row for every date
            flat = [float(c.sec_fee_rate), float(c.finra_taf_per_share), float(c.finra_taf_cap)]
            rows = flat if c.regulatory_fees == "flat" else [0.0, 0.0, 0.0]
            self.fees = np.tile(rows, (self.close.shape[0], 1))
        r = params.reward
        self.w_log, self.cost_pen = float(r.log_return_weight), float(r.cost_penalty)
        self.w_dsr, self.eta = float(r.dsr_weight), float(r.dsr_eta)
        self.dd_pen, self.scale = float(r.drawdown_penalty), float(r.reward_scale)
        self.w, self.length = int(params.window), int(params.episode_length)
        self.first = int(params.data.start)            # episodes start here (rows before: history)
        self.adv_window = int(c.adv_window)
        self.random_start = bool(params.random_start)
        self.cash0, self.ruin = float(params.initial_cash), float(params.ruin_floor)
        self.tilt = float(params.factor_tilt)
        if action_space not in ("regimes", "weights"):
            raise ValueError(f"action_space must be 'regimes' or 'weights', not {action_space!r}")
        self.action_space = action_space
        self.auto_reset = auto_reset
        self.rng = np.random.default_rng(seed)
        self.n = self.close.shape[1]
        self.k = {"half": math.ceil(self.n / 2), "top30": max(1, round(0.3 * self.n))}

    # -------------------------------------------------------------------------------- episodes

    def reset(self, u: float | None = None):
        """A fresh all-cash episode; u ~ uniform[0, 1) picks the start row (default: own rng)."""
        n_rows = self.close.shape[0]
        if self.random_start:
            u = float(self.rng.random()) if u is None else float(u)
            n_starts = n_rows - self.length - self.first
            self.t = self.first + min(int(np.float32(u) * np.float32(n_starts)), n_starts - 1)
            self.end = self.t + self.length
        else:
            self.t, self.end = self.first, n_rows - 1
        self.h = np.zeros(self.n)
        self.position_cash = np.zeros(self.n)
        self.target_w = np.zeros(self.n)
        self.cash = self.value = self.cash0
        self.weights = np.r_[np.zeros(self.n), 1.0]
        self.episode_return, self.episode_length = 0.0, 0
        self.dsr_a = self.dsr_b = 0.0
        self.peak = self.cash0
        return self.obs()

    def obs(self) -> dict:
        """{"window": rows t-W .. t-1 of [features flattened per row, market], "state": weights}."""
        rows = slice(self.t - self.w, self.t)
        win = np.concatenate([self.features[rows].reshape(self.w, -1), self.market[rows]], axis=1)
        return {"window": win, "state": self.weights.copy()}

    # ---------------------------------------------------------------------------------- pieces

    def top(self, score, k):
        mask = np.zeros(self.n, bool)
        mask[np.argsort(-score, kind="stable")[:k]] = True
        return mask

    def regime_target(self, action: int):
        """(target asset weights [N], keep) of regime `action` from row t-1's factor scores."""
        action = int(np.clip(action, 0, len(_CASH) - 1))
        prev = self.t - 1
        scores = {"momentum": self.mom[prev], "low_vol": -self.vol[prev], "sharpe": self.sharpe[prev],
                  "small": -self.size[prev]}
        if action in _GROUP:
            factor, size = _GROUP[action]
            sel = self.top(scores[factor], self.k[size]).astype(np.float64)
        else:
            sel = np.ones(self.n)
        n_sel, n_rest = sel.sum(), (1 - sel).sum()
        tilt = self.tilt if n_rest > 0 else 1.0
        sleeve = tilt * sel / n_sel + (1 - tilt) * (1 - sel) / max(n_rest, 1.0)
        if action == 0:                                   # HOLD: keep the weights, trade nothing
            return self.weights[:self.n], True
        return (1 - _CASH[action]) * sleeve, False

    def weights_target(self, logits):
        z = np.asarray(logits, np.float64)
        e = np.exp(z - z.max())
        return (e / e.sum())[:self.n], False

    def costs(self, u, shares, price, value):
        """Every cost per asset [N], quote currency (jaxtrade.envs.costs, in numpy)."""
        tv = np.abs(shares * price)
        a = np.abs(shares)
        c = (self.comm * tv + self.comm_share * a + 0.5 * self.spread * tv + 0.5 * self.spread_abs * a
             + u * self.slip * tv)
        sec, taf, taf_cap = self.fees[self.t]
        c = c + np.where(shares < 0, sec * tv + np.minimum(taf * a, taf_cap), 0.0)
        if self.impact_model == "sqrt_adv":
            sigma = self.vol[self.t - 1]
            adv = np.maximum(self.volume[self.t - self.adv_window:self.t].mean(0), 1.0)
            return c + self.impact_y * sigma * tv * np.sqrt(a / adv)
        if self.impact_model == "assumed_adv":
            return c + self.impact_y * self.vol[self.t - 1] * tv * np.sqrt(a / (self.assumed_adv / price))
        if self.impact_model == "seed":
            return c + self.impact * tv * np.sqrt(tv / value)
        return c

    def reward(self, v0, v1, cost):
        r = math.log(max(v1 / v0, 1e-8))
        da, db = r - self.dsr_a, r * r - self.dsr_b
        var = self.dsr_b - self.dsr_a ** 2
        dsr = (self.dsr_b * da - 0.5 * self.dsr_a * db) / var ** 1.5 if var > 1e-12 else 0.0
        self.dsr_a, self.dsr_b = self.dsr_a + self.eta * da, self.dsr_b + self.eta * db
        self.peak = max(self.peak, v1)
        dd = 1.0 - v1 / self.peak
        total = self.w_log * r - self.cost_pen * cost / v0 + self.w_dsr * dsr - self.dd_pen * dd
        return self.scale * total

    # ------------------------------------------------------------------------------------ step

    def step(self, action, u=None):
        """(obs, reward, done, info) of one step; u: [N] slippage draws ~ uniform[0, 1)."""
        t, p = self.t, self.close[self.t]
        u = self.rng.random(self.n) if u is None else np.asarray(u, np.float64)
        if self.action_space == "regimes":
            target, keep = self.regime_target(action)
        else:
            target, keep = self.weights_target(action)
        gate = bool(self.turb[t - 1] > self.thr)
        if gate:
            target = np.zeros(self.n)
        shares = np.zeros(self.n) if (keep and not gate) else target * self.value / p - self.h
        c = self.costs(u, shares, p, self.value)
        flow = shares * p
        buy = shares > 0
        buys = flow[buy].sum()
        avail = self.cash - flow[~buy].sum() - c.sum()
        if buys > avail:                                  # the cash floor: scale the buys down
            shares[buy] *= min(max(avail / buys, 0.0), 1.0) * (1 - _CASH_MARGIN)
            c[buy] = self.costs(u, shares, p, self.value)[buy]
            flow = shares * p
        h0, self.h = self.h, self.h + shares
        self.cash -= flow.sum() + c.sum()
        # Trade PnL: a position closes when it returns to flat or flips sign.
        closed = (h0 != 0) & (np.sign(self.h) != np.sign(h0))
        frac = np.where(closed, np.abs(h0) / np.where(closed, np.abs(shares), 1.0), 0.0)
        pnl = np.where(closed, self.position_cash + h0 * p - c * frac, 0.0)
        self.position_cash = np.where(closed, -self.h * p - c * (1 - frac), self.position_cash - flow - c)
        if not (keep and not gate):
            self.target_w = target
        held = self.h * p
        post = self.cash + held.sum()
        self.weights = np.r_[held, self.cash] / (post if post > 0 else 1.0)
        value0 = self.value
        value1 = self.cash + self.h @ self.close[t + 1]
        reward = self.reward(value0, value1, c.sum())
        self.value, self.t = value1, t + 1
        self.episode_return += reward
        self.episode_length += 1
        terminated = value1 < self.ruin * self.cash0
        truncated = self.t >= self.end and not terminated
        done = terminated or truncated
        info = {"costs": c.sum(), "gate": gate, "trade_closed": closed, "trade_pnl": pnl,
                "turnover": np.abs(flow).sum() / value0, "value": value1, "value_before": value0,
                "weights": self.weights.copy(), "terminated": terminated, "truncated": truncated,
                "episode_return": self.episode_return, "episode_length": self.episode_length}
        obs = self.reset() if (done and self.auto_reset) else self.obs()
        return obs, reward, done, info
