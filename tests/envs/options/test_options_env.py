"""The options environment (`jaxtrade.envs.options.env`) on the bundled S&P 500 + VIX data.

Every rollout here goes through the public auto-resetting `env.step` (after `reset_state` at a
chosen row), one `lax.scan` per env (the action of each step drawn from the observation's
`action_mask`, or scripted), and three compiled
programs serve the whole file (XLA's cheapest backend optimization level, as compiling dominates):
the 100-env `vmap` of the default config, the same scan for one env (scripted scenarios, the
look-ahead check, vmap against one by one), and one env of the legacy layout with
on_breach="hold" and force_close_dte=1 (legacy closes, the hold gate, settlement at expiry).

The ledger checks are `options_ledger.replay`: an independent float64 numpy replay with its own
Black-Scholes-Merton mids (see its docstring). Tolerances (float32 env, NAV ~ $1e6, one ulp $0.06):
- NAV, cash and PnL identities: 2e-7 (1.7 float32 ulps) of the step's dollar scale (|cash| + stock +
  |legs|, ~$0.2 at $1e6) plus a float32 pricing error of 4e-7 x spot (3.4 ulps) per share of every
  contract marked or traded (the env prices in float32, this replay in float64: $0.08 per contract at
  a spot of 2000). The 10,000 random steps use less than half of it.
- reward == log(value / value_before): 5e-7 absolute, 4 float32 ulps of 1 (the rounded ratio and
  XLA's float32 log near 1).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from envs_testlib import perturb_rows
from options_ledger import Config, Market, bsm_mid, first_failure, replay

from jaxtrade import envs
from jaxtrade.envs.options import env as options_env
from jaxtrade.envs.options import strategies as st

N_ENVS, N_STEPS, EPISODE = 100, 100, 64
CONFIG = {"fee_mode": "flat", "episode_length": EPISODE}
# The second static config: every non-default static at once (one more compile, not three).
LEGACY_CONFIG = {**CONFIG, "layout": "legacy", "on_breach": "hold", "force_close_dte": 1}
FAST_COMPILE = {"xla_backend_optimization_level": 0}
RANDOM_ALLOWED, RANDOM_ANY = -1, -2          # script entries: a uniform allowed / any action
INFO = ("value", "value_before", "cash", "action", "executed", "fees", "spread_paid", "units", "slot_open",
        "leg_strike", "leg_expiry", "leg_qty", "trade_closed", "trade_pnl", "settled", "forced_close", "gate",
        "greeks", "truncated", "terminated", "risk_free", "interest", "dividends")
# Tolerances (module docstring).
REL_TOL, PX_TOL, REWARD_TOL = 2e-7, 4e-7, 5e-7
# vmap against one by one: XLA fuses the batched program differently (1e-7 relative on the obs state,
# 1e-6 on a spread paid, a difference of nearly equal fills and mids).
FLOAT_TOL = dict(rtol=1e-5, atol=1e-6)
# Full-layout actions (strategies docstring) and legacy ones.
BUY_CALL_ATM, BUY_CALL_M5, BUY_CALL_P3, BUY_PUT_ATM, COVERED_CALL_ATM = 8, 3, 11, 23, 38
STRADDLE_28D = 74
LEG_BUY_CALL_M5, LEG_BUY_CALL_ATM, LEG_BUY_PUT_ATM, LEG_CLOSE = 1, 6, 16, 21


def _rollout(env, params, key, u0, script, *, full_obs):
    """One env: reset at the row `u0` picks, then len(script) auto-resetting steps; what each recorded."""
    state = options_env.reset_state(u0, params)
    obs = options_env.observe(state, params)

    def body(carry, x):
        obs, state = carry
        k, scr = x
        k_env, k_ok, k_any = jax.random.split(k, 3)
        mask = obs["action_mask"]
        a_ok = jax.random.categorical(k_ok, jnp.where(mask, 0.0, -jnp.inf))
        a_any = jax.random.randint(k_any, (), 0, mask.shape[0])
        a = jnp.where(scr >= 0, scr, jnp.where(scr == RANDOM_ALLOWED, a_ok, a_any)).astype(jnp.int32)
        obs2, state2, reward, done, info = env.step(k_env, state, a, params)
        rec = {"t": state.t, "mask": mask, "chosen": a, "reward": reward, "done": done,
               "obs_state": obs["state"], **{name: info[name] for name in INFO}}
        if full_obs:
            rec["obs"] = obs
        return (obs2, state2), rec

    _, rec = jax.lax.scan(body, (obs, state), (jax.random.split(key, script.shape[0]), script))
    return rec


def _np(tree):
    return jax.tree.map(np.asarray, tree)


def _first(out):
    """The only env of a scripted run: arrays [n, ...]."""
    return jax.tree.map(lambda x: x[0], out)


class Setup:
    """The data, both configs and the three compiled rollouts."""

    def __init__(self):
        from jaxtrade.data import load_dataset, split

        md = load_dataset("sp500-vix")
        self.data = split(md, train=("2014-05-01", "2016-12-31"), lookback=30).train.to_device()
        self.env, self.params = envs.make("options", self.data, CONFIG)
        self.env_l, self.params_l = envs.make("options", self.data, LEGACY_CONFIG)
        # The scripted scenarios run with the gate off unless they test it (the default threshold is
        # the 90% quantile of the underlying's own turbulence: it breaches on 1 row in 10).
        off = jnp.float32(np.inf)
        self.quiet, self.quiet_l = (p.replace(turbulence_threshold=off) for p in (self.params, self.params_l))
        jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE)
        self.batch = jit(jax.vmap(functools.partial(_rollout, self.env, full_obs=False),
                                  in_axes=(None, 0, 0, 0)))
        self.one = jit(functools.partial(_rollout, self.env, full_obs=True))
        self.one_l = jit(functools.partial(_rollout, self.env_l, full_obs=False))
        c = self.params.chain
        self.market = Market(close=np.asarray(self.data.close[:, 0], np.float64),
                             day=np.asarray(self.data.day).astype(np.int64),
                             rate=np.asarray(c.rate, np.float64), iv=np.asarray(c.atm_iv, np.float64),
                             turbulence=np.asarray(self.params.data.turbulence, np.float64))
        self.first = self.data.start
        self.n_starts = self.data.n_rows - EPISODE - self.first

    def u_for(self, row: int) -> float:
        """The reset uniform whose episode starts at `row` (market.episode_bounds)."""
        assert self.first <= row < self.first + self.n_starts
        return (row - self.first + 0.5) / self.n_starts

    def run(self, start: int, script, *, legacy=False, params=None, key=0) -> dict:
        """One scripted env from row `start` (script padded with hold to N_STEPS); arrays [1, n, ...]."""
        script = list(script) + [0] * (N_STEPS - len(script))
        fn, p = (self.one_l, self.quiet_l) if legacy else (self.one, self.quiet)
        rec = fn(params if params is not None else p, jax.random.PRNGKey(key), jnp.float32(self.u_for(start)),
                 jnp.asarray(script, jnp.int32))
        return jax.tree.map(lambda x: x[None], _np(rec))

    def config(self, B=1, legacy=False, params=None) -> Config:
        p = params if params is not None else (self.quiet_l if legacy else self.quiet)
        return Config(layout=p.table.layout, max_positions=p.max_positions, force_close_dte=p.force_close_dte,
                      on_breach=p.on_breach, initial_cash=float(p.initial_cash),
                      stock_weight=np.full(B, float(p.stock_weight)),
                      threshold=np.full(B, float(p.turbulence_threshold)),
                      dividend_yield=p.chain_config.dividend_yield,
                      cash_earns_risk_free=p.cash_earns_risk_free)

    def market_of(self, params) -> Market:
        return Market(**{**self.market.__dict__,
                         "turbulence": np.asarray(params.data.turbulence, np.float64)})


@pytest.fixture(scope="module")
def setup() -> Setup:
    return Setup()


@pytest.fixture(scope="module")
def main_run(setup):
    """100 envs x 100 steps (10,000 steps; every env crosses one auto-reset) of the default config, its
    turbulence gate included (the 90% quantile of the underlying's turbulence, close_all): 3 in 4 steps
    a uniform allowed action, 1 in 4 a uniform action of all 91 (masked ones included)."""
    rng = np.random.default_rng(0)
    keys = jax.random.split(jax.random.PRNGKey(0), N_ENVS)
    u0 = jnp.asarray(rng.uniform(size=N_ENVS), jnp.float32)
    script = jnp.asarray(rng.choice([RANDOM_ALLOWED] * 3 + [RANDOM_ANY], size=(N_ENVS, N_STEPS)), jnp.int32)
    out = _np(setup.batch(setup.params, keys, u0, script))
    led = replay(out, setup.market, setup.config(N_ENVS, params=setup.params))
    return {"keys": keys, "u0": u0, "script": script, "out": out, **led}


def _assert_checks(led, names=None):
    for name, ok in led["chk"].items():
        if names is None or name in names:
            assert ok.all(), f"{name}: first failure at {first_failure(ok)}"


def _assert_identities(led):
    res = led["res"]
    for name in ("nav", "cash", "pnl"):
        tol = REL_TOL * res[f"{name}_scale"] + PX_TOL * res[f"{name}_px"]
        ok = np.abs(res[name]) <= tol
        worst = np.unravel_index(np.argmax(np.abs(res[name]) / tol), ok.shape)
        assert ok.all(), (f"{name} identity off by ${res[name][worst]:.4f} (tolerance ${tol[worst]:.4f}) at "
                          f"{first_failure(ok)}")
    assert np.all(np.abs(res["value_before"]) <= 1e-7 * 1e6 + 0.1)
    # The carry to t + 1: the rate exactly as the ledger's (float32 rounding), its dollars to $0.001.
    assert np.abs(res["risk_free"]).max() <= 1e-10, np.abs(res["risk_free"]).max()
    for name in ("interest", "dividends"):
        assert np.abs(res[name]).max() <= 1e-3, (name, np.abs(res[name]).max())
    assert np.all(np.abs(res["settled"]) <= 1e-6 * 1e6)
    assert np.all(res["fee_kinds"] <= 1.0), first_failure(res["fee_kinds"] <= 1.0)
    assert np.all(res["sec"] <= 1.0), first_failure(res["sec"] <= 1.0)
    for bound in ("spread_lo", "spread_hi"):
        ok = res[bound] >= 0
        assert ok.all(), f"{bound}: the spread paid is out of its bounds at {first_failure(ok)}"


# 1. the ledger

def test_ledger_invariants_over_10000_random_steps(setup, main_run):
    """Every step of 100 envs x 100 steps on the real data: the independent replay's NAV, cash and PnL
    identities, settlement, which slots end and why, which action runs into which slot with which legs,
    the fees by kind (flat published rates) and bounds on the spread paid."""
    out = main_run["out"]
    assert out["t"].shape == (N_ENVS, N_STEPS)
    # The replay's inputs: the chain's implied vol is the VIX close / 100 (aux "iv") on traded rows.
    rows = slice(setup.first - 1, None)
    np.testing.assert_array_equal(setup.market.iv[rows], np.asarray(setup.data.aux["iv"], np.float64)[rows])
    _assert_checks(main_run)
    _assert_identities(main_run)
    # The rollout exercised the book: opens of every family, closes, forced closes, auto-resets.
    fam = st.numpy_table("full").family[out["action"][out["executed"]]]
    assert set(np.unique(fam)) == set(range(1, 11)), np.unique(fam)
    assert out["executed"].sum() > 2000 and out["trade_closed"].sum() > 1000
    assert out["forced_close"].sum() > 500 and out["done"].sum() >= N_ENVS
    assert main_run["res"]["n_legs_open"].max() >= 10


# 2. settlement and forced closes

def _weekday(day):
    return (int(day) + 3) % 7           # day 0 = 1970-01-01, a Thursday; Monday = 0


def _first_row(m, rows, expiry, fcd):
    """The first row in `rows` whose calendar day is within `fcd` days of `expiry`."""
    return next(r for r in rows if expiry - m.day[r] <= fcd)


def test_settlement_at_expiry_and_forced_close(setup):
    """force_close_dte=1 (legacy config): a call listed on a Monday whose expiry Monday is a market
    holiday skips dte 1 (Sunday) and settles at intrinsic on the first row after the holiday
    ((S - K) x 100 x qty into cash, no fee, no spread); one listed on a Tuesday closes on the Monday
    before, dte 1, at the bid with fees. The default force_close_dte=7 closes it a week earlier."""
    m, cfg = setup.market, setup.params_l
    days = set(m.day.tolist())
    last_start = setup.first + setup.n_starts - 1
    # a Monday listing whose 28-day expiry is a holiday and finishes >= 2% in the money (K = 95% spot)
    r0 = None
    for r in range(setup.first, last_start):
        exp = m.day[r] + 28
        if _weekday(m.day[r]) == 0 and exp not in days:
            rs = int(np.searchsorted(m.day, exp))
            if m.close[rs] > 0.95 * m.close[r] * 1.02 and rs - r < EPISODE:
                r0 = r
                break
    assert r0 is not None
    out = setup.run(r0, [LEG_BUY_CALL_M5, LEG_CLOSE + 1, LEG_CLOSE + 9], legacy=True)
    led = replay(out, m, setup.config(legacy=True))
    _assert_checks(led)
    _assert_identities(led)
    o = _first(out)
    assert o["executed"][0] and o["slot_open"][0, 0]
    expiry = int(o["leg_expiry"][0, 0, 0])
    assert expiry == m.day[r0] + 28
    K, qty = float(o["leg_strike"][0, 0, 0]), float(o["leg_qty"][0, 0, 0])
    np.testing.assert_allclose(K, 0.95 * m.close[r0], rtol=1e-6)
    rs = int(np.searchsorted(m.day, expiry))
    assert m.day[rs] > expiry and m.day[rs - 1] < expiry - cfg.force_close_dte   # holiday; Friday dte 3
    k = rs - r0
    assert o["t"][k] == rs
    assert o["slot_open"][:k, 0].all() and not o["slot_open"][k, 0]
    assert o["trade_closed"][k, 0] and not o["trade_closed"][:k].any()
    assert not o["forced_close"][: k + 1].any()
    payoff = (m.close[rs] - K) * 100 * qty
    assert payoff > 0
    np.testing.assert_allclose(o["settled"][k], payoff, rtol=1e-5)
    carry = o["interest"][k] + o["dividends"][k]                      # earned on to row rs + 1
    np.testing.assert_allclose(o["cash"][k] - o["cash"][k - 1], payoff + carry, rtol=1e-5)
    assert o["fees"][k].sum() == 0 and o["spread_paid"][k] == 0
    # Masked legacy closes of empty slots (1) and beyond max_positions (9) did nothing.
    assert list(o["action"][:3]) == [LEG_BUY_CALL_M5, 0, 0] and not o["executed"][1:3].any()

    # A Tuesday listing whose expiry-eve Monday trades: forced out at dte 1 here, dte 7 by default.
    r1 = next(r for r in range(setup.first + 5, last_start) if _weekday(m.day[r]) == 1
              and m.day[r] + 27 in days and m.day[r] + 21 in days)
    closes = {}
    for legacy, action in ((True, LEG_BUY_CALL_M5), (False, BUY_CALL_M5)):
        out = setup.run(r1, [action], legacy=legacy)
        led = replay(out, m, setup.config(legacy=legacy))
        _assert_checks(led)
        _assert_identities(led)
        o = _first(out)
        assert o["executed"][0]
        fcd = (setup.params_l if legacy else setup.params).force_close_dte
        exp = int(o["leg_expiry"][0, 0, 0])
        rc = _first_row(m, range(r1 + 1, r1 + N_STEPS), exp, fcd)
        k = rc - r1
        assert o["forced_close"][k] and o["trade_closed"][k, 0] and not o["trade_closed"][:k].any()
        assert o["settled"][k] == 0 and o["fees"][k].sum() > 0 and o["spread_paid"][k] > 0
        assert exp - m.day[rc] == fcd
        closes[fcd] = rc
    assert m.day[closes[1]] - m.day[closes[7]] == 6


# 3. masks

def test_masked_actions_never_execute(setup, main_run):
    """Over the 10,000 random steps (2,500 of them drawn from all 91 actions) a masked action never runs
    (info["action"] 0, not executed); the mask matches the slot limit and the free 100-share lots of
    the covered calls exactly; then covered calls without shares and the legacy closes."""
    out = main_run["out"]
    _assert_checks(main_run, {"masked_never_executes", "action", "mask_slots", "mask_cc", "mask_hold",
                              "executed_slot"})
    allowed = np.take_along_axis(out["mask"], out["chosen"][..., None], -1)[..., 0]
    assert (~allowed).sum() > 500
    assert not out["executed"][~allowed].any() and (out["action"][~allowed] == 0).all()
    run = allowed & ~out["gate"]
    np.testing.assert_array_equal(out["action"][run], out["chosen"][run])
    assert out["gate"].sum() > 200 and not out["executed"][out["gate"]].any()
    tab = st.numpy_table("full")
    full = out["slot_open"].sum(-1) == setup.params.max_positions
    assert full.sum() > 500                    # the slot limit binds (and then masks every open) ...
    cc_masked = ~out["mask"][:, :, tab.needs_shares].any(-1) & out["mask"][:, :, tab.is_open].any(-1)
    assert cc_masked.sum() > 500               # ... and so do the shares of the covered calls
    assert (out["slot_open"].sum(-1) <= setup.params.max_positions).all()

    # No shares (stock_weight 0): every covered call masked, a scripted one does nothing.
    p0 = setup.quiet.replace(stock_weight=jnp.float32(0.0))
    start = setup.first + 50
    out0 = setup.run(start, [COVERED_CALL_ATM, COVERED_CALL_ATM + 3, BUY_CALL_ATM, COVERED_CALL_ATM],
                     params=p0)
    led = replay(out0, setup.market, Config(**{**setup.config().__dict__, "stock_weight": np.zeros(1)}))
    _assert_checks(led)
    _assert_identities(led)
    assert not out0["mask"][0, :, tab.needs_shares].any()
    assert list(out0["action"][0, :4]) == [0, 0, BUY_CALL_ATM, 0]
    assert list(out0["executed"][0, :4]) == [False, False, True, False]
    # With the default shares (250 = 2 lots) a covered call runs once, covering both lots, then masks.
    out1 = setup.run(start, [COVERED_CALL_ATM, COVERED_CALL_ATM])
    assert list(out1["executed"][0, :2]) == [True, False] and out1["units"][0, 0] == 2
    assert out1["mask"][0, 0, COVERED_CALL_ATM] and not out1["mask"][0, 1, tab.needs_shares].any()

    # The slot limit: five opens fill the five slots, then every open is masked and a sixth does nothing.
    six = [BUY_CALL_ATM, BUY_PUT_ATM, STRADDLE_28D, BUY_PUT_ATM, STRADDLE_28D, BUY_CALL_ATM]
    o = _first(setup.run(start, six))
    assert list(o["executed"][:6]) == [True] * 5 + [False] and o["action"][5] == 0
    assert o["slot_open"][4].all() and not o["mask"][5, tab.is_open].any() and o["mask"][4, tab.is_open].any()

    # Legacy: closing an empty slot or one past max_positions is masked; closing an open one runs.
    legacy_tab = st.numpy_table("legacy")
    close_ids = np.flatnonzero(legacy_tab.close_slot >= 0)
    script = [LEG_CLOSE, LEG_CLOSE + 7, LEG_BUY_CALL_ATM, LEG_CLOSE + 1, LEG_BUY_PUT_ATM, LEG_CLOSE + 5,
              LEG_CLOSE, LEG_CLOSE]
    out2 = setup.run(start, script, legacy=True)
    _assert_checks(replay(out2, setup.market, setup.config(legacy=True)))
    o = _first(out2)
    assert not o["mask"][0, close_ids].any()
    np.testing.assert_array_equal(o["action"][:8], [0, 0, LEG_BUY_CALL_ATM, 0, LEG_BUY_PUT_ATM, 0,
                                                    LEG_CLOSE, 0])
    assert o["mask"][6, LEG_CLOSE] and o["mask"][6, LEG_CLOSE + 1] and not o["mask"][6, LEG_CLOSE + 2]
    assert o["trade_closed"][6, 0] and not o["slot_open"][6, 0] and o["slot_open"][6, 1]
    assert not o["mask"][:, close_ids[setup.params_l.max_positions:]].any()
    # Random legacy episodes, masked actions included: the replay's checks (masks of the closes too).
    for key in range(3):
        outr = setup.run(setup.first + 40 * key, [RANDOM_ANY, RANDOM_ALLOWED] * (N_STEPS // 2), legacy=True,
                         key=key)
        led = replay(outr, setup.market, setup.config(legacy=True))
        _assert_checks(led)
        _assert_identities(led)


# 4. Greeks limits

def test_greeks_limits_cut_the_units(setup):
    """The Greeks limits cut a breaching open's units (x 0.5 for delta, x 0.7 for gamma or theta, once
    each, then floored) and leave a non-breaching one alone."""
    start = setup.first + 100
    huge = dict(delta_limit=1e9, gamma_limit=1e9, theta_limit=1e9)

    def units(action, **limits):
        p = setup.quiet.replace(**{k: jnp.float32(v) for k, v in limits.items()})
        out = setup.run(start, [action], params=p)
        assert out["executed"][0, 0]
        np.testing.assert_array_equal(out["leg_qty"][0, 0, 0, 0], out["units"][0, 0])
        return float(out["units"][0, 0]), out["greeks"][0, 0]

    u, _ = units(BUY_CALL_P3, **huge)
    assert u >= 8
    f32 = np.float32
    assert units(BUY_CALL_P3, **{**huge, "delta_limit": 1e-6})[0] == np.floor(f32(u) * f32(0.5))
    assert units(BUY_CALL_P3, **{**huge, "gamma_limit": 1e-6})[0] == np.floor(f32(u) * f32(0.7))
    assert units(BUY_CALL_P3, **{**huge, "theta_limit": 1e-6})[0] == np.floor(f32(u) * f32(0.7))
    both = units(BUY_CALL_P3, delta_limit=1e-6, gamma_limit=1e-6, theta_limit=1e-6)[0]
    assert both == np.floor(f32(u) * (f32(0.5) * f32(0.7)))          # once each, not per Greek
    # The straddle (delta ~ 0) is within the default limits: its units are the uncut ones.
    us, _ = units(STRADDLE_28D, **huge)
    ud, g = units(STRADDLE_28D)
    assert ud == us >= 1
    p = setup.params
    assert abs(g[0]) < float(p.delta_limit) and abs(g[1]) < float(p.gamma_limit)
    assert abs(g[2]) < float(p.theta_limit)
    # The delta of a default-sized OTM call, by this file's BSM: breach iff the env halves it.
    m, t = setup.market, start
    K = m.close[t] * 1.03
    eps = 1e-3 * m.close[t]
    q = p.chain_config.dividend_yield
    delta = (bsm_mid(m.close[t] + eps, K, 28, m.rate[t], m.iv[t], 0, q)
             - bsm_mid(m.close[t] - eps, K, 28, m.rate[t], m.iv[t], 0, q)) / (2 * eps)
    ud_call, _ = units(BUY_CALL_P3)
    exposure = u * 100 * delta * m.close[t] / 1e6
    assert exposure > float(p.delta_limit) and ud_call <= np.floor(f32(u) * f32(0.5))


# 5. the turbulence gate

def _gated(setup, params, row):
    """params whose data's turbulence jumps from 0 to 10 at `row`, threshold 5: gate on from row + 1."""
    turb = np.zeros(setup.data.n_rows, np.float32)
    turb[row:] = 10.0
    return params.replace(data=params.data.replace(turbulence=jnp.asarray(turb)),
                          turbulence_threshold=jnp.float32(5.0))


@pytest.mark.parametrize("on_breach", ["close_all", "hold"])
def test_turbulence_gate(setup, on_breach):
    """Two positions open, then the gate (turbulence[t-1] > threshold) breaches: "close_all" closes
    every slot and opens nothing, "hold" keeps the positions and opens nothing."""
    start = setup.first + 200
    legacy = on_breach == "hold"
    base = setup.params_l if legacy else setup.params
    assert base.on_breach == on_breach
    params = _gated(setup, base, start + 1)
    opens = ([LEG_BUY_CALL_ATM, LEG_BUY_PUT_ATM, LEG_BUY_CALL_M5] if legacy
             else [BUY_CALL_ATM, BUY_PUT_ATM, STRADDLE_28D])
    script = opens + opens * 4
    out = setup.run(start, script, legacy=legacy, params=params)
    cfg = setup.config(legacy=legacy, params=params)
    led = replay(out, setup.market_of(params), cfg)
    _assert_checks(led)
    _assert_identities(led)
    o = _first(out)
    n = len(script)
    assert list(o["gate"][:n]) == [False, False] + [True] * (n - 2)      # turbulence[t - 1] > 5 from t = +2
    assert list(o["executed"][:n]) == [True, True] + [False] * (n - 2)
    assert (o["action"][2:n] == 0).all()
    if on_breach == "close_all":
        assert o["trade_closed"][2, :2].all() and not o["slot_open"][2:].any()
        assert o["fees"][2].sum() > 0 and np.isfinite(o["trade_pnl"][2, :2]).all()
    else:
        assert not o["trade_closed"][:n].any()
        two_open = np.tile([True, True, False, False, False], (n - 1, 1))
        np.testing.assert_array_equal(o["slot_open"][1:n], two_open)
        np.testing.assert_array_equal(o["leg_qty"][2:n], np.broadcast_to(o["leg_qty"][1], (n - 2, 5, 4)))


# 6. no look-ahead

def test_observation_reads_rows_before_t_only(setup):
    """Perturbing every row >= t0 of the data (prices, features, market features, the VIX) and rebuilding
    the env leaves every observation up to row t0 unchanged (window rows < t, chain row t - 1, the book
    marked at t - 1, the mask from the calendar), and so every random decision before it; so is the
    first observation of an episode that starts at t0 (reset's, whose shares are bought at close[t0]:
    it once showed their weight marked at close[t0 - 1], revealing close[t0] / close[t0 - 1])."""
    start, lead = setup.first + 300, 20
    t0 = start + lead
    rng = np.random.default_rng(3)
    pert = perturb_rows(setup.data, t0)
    iv = np.array(pert.aux["iv"], np.float64)
    iv[t0:] *= np.exp(0.3 * rng.normal(size=iv[t0:].shape))
    pert = pert.replace(aux={**pert.aux, "iv": jnp.asarray(iv, jnp.float32)})
    # the gate's threshold as a training split would pass it (make refits None on the data it gets)
    threshold = float(setup.params.turbulence_threshold)
    _, p_pert = envs.make("options", pert, {**CONFIG, "turbulence_threshold": threshold})
    script = [RANDOM_ALLOWED] * 40
    a = setup.run(start, script, params=setup.params, key=7)
    b = setup.run(start, script, params=p_pert, key=7)
    assert a["t"][0, lead] == t0 and b["t"][0, lead] == t0
    assert a["executed"][0, :lead].sum() >= 5
    for k in range(lead + 1):
        for name in ("window", "chain", "state", "action_mask"):
            np.testing.assert_array_equal(a["obs"][name][0, k], b["obs"][name][0, k], err_msg=f"{name} {k}")
    np.testing.assert_array_equal(a["chosen"][0, : lead + 1], b["chosen"][0, : lead + 1])
    np.testing.assert_array_equal(a["units"][0, :lead], b["units"][0, :lead])
    # ... and the perturbation does reach the next observation.
    assert not np.array_equal(a["obs"]["window"][0, lead + 1], b["obs"]["window"][0, lead + 1])
    assert not np.array_equal(a["obs"]["chain"][0, lead + 1], b["obs"]["chain"][0, lead + 1])
    # An episode starting at t0: reset's observation reads rows < t0 only (its first step's next one
    # does not, and the perturbed close[t0] changed the shares it holds).
    a, b = (setup.run(t0, [0], params=p) for p in (setup.params, p_pert))
    for name in ("window", "chain", "state", "action_mask"):
        np.testing.assert_array_equal(a["obs"][name][0, 0], b["obs"][name][0, 0],
                                      err_msg=f"reset {name}")
    assert not np.array_equal(a["obs"]["state"][0, 1], b["obs"]["state"][0, 1])


# 7. determinism, vmap against one by one

def test_same_key_same_trajectory_and_vmap_matches_one_by_one(setup, main_run):
    out = main_run["out"]
    again = _np(setup.batch(setup.params, main_run["keys"], main_run["u0"], main_run["script"]))
    for name in out:
        np.testing.assert_array_equal(out[name], again[name], err_msg=name)
    other = _np(setup.batch(setup.params, jax.random.split(jax.random.PRNGKey(1), N_ENVS), main_run["u0"],
                            main_run["script"]))
    assert not np.array_equal(out["chosen"], other["chosen"])
    for i in range(3):
        one = _np(setup.one(setup.params, main_run["keys"][i], main_run["u0"][i], main_run["script"][i]))
        assert one["done"].any()                                  # the comparison crosses an auto-reset
        for name in out:           # discrete leaves exactly, floats to float32 rounding (FLOAT_TOL)
            if out[name].dtype.kind == "f":
                np.testing.assert_allclose(one[name], out[name][i], **FLOAT_TOL, err_msg=name)
            else:
                np.testing.assert_array_equal(one[name], out[name][i], err_msg=name)
        np.testing.assert_allclose(one["obs"]["state"], out["obs_state"][i], **FLOAT_TOL)


# 8. the reward

def test_reward_is_the_log_growth_of_nav(main_run):
    """Default reward params: reward == log(value / value_before) on every step (float32: 2e-7)."""
    res = main_run["res"]["reward"]
    assert np.abs(res).max() <= REWARD_TOL, np.abs(res).max()
    out = main_run["out"]
    np.testing.assert_allclose(out["reward"], np.log(out["value"] / out["value_before"]), atol=REWARD_TOL)


# 9. the carry: cash earns the dated risk-free rate, held shares the dividend yield

def _episode(setup, params, start):
    """One scripted hold episode of EPISODE steps from `start` (its first episode only)."""
    o = jax.tree.map(lambda x: x[:EPISODE], _first(setup.run(start, [], params=params)))
    assert (np.diff(o["t"]) == 1).all() and o["done"][-1] and not o["done"][:-1].any()
    return o


def _calendar_days(setup, rows):
    """[n] calendar days from each of the consecutive rows `rows` to the next."""
    return np.diff(setup.market.day[rows[0]: rows[-1] + 2]).astype(np.float64)


def test_all_cash_grows_at_the_compounded_risk_free_rate(setup):
    """An all-cash book held for N_STEPS grows by prod over steps of (1 + RF_m)^(12 d / 365) (RF_m the
    Fama-French one-month T-bill return of the step's month, d its calendar days), by the data layer's
    `risk_free_daily`, not the env's chain rate; `info["risk_free"]` is that per-step rate; with
    `cash_earns_risk_free` off the book stays flat and the rate reads 0."""
    import pandas as pd

    from jaxtrade.data import risk_free_daily

    start = setup.first + setup.n_starts - 1           # 2016-09 .. 12: RF 0.02% .. 0.03% a month
    cash_only = setup.quiet.replace(stock_weight=jnp.float32(0.0))
    o = _episode(setup, cash_only, start)
    rows = o["t"]
    dates = pd.DatetimeIndex(setup.market.day[rows].astype("datetime64[D]"))
    monthly = risk_free_daily(dates, periods_per_year=12.0)
    step = (1.0 + monthly) ** (12.0 * _calendar_days(setup, rows) / 365.0) - 1.0
    np.testing.assert_allclose(o["risk_free"], step, rtol=1e-5)
    np.testing.assert_allclose(o["value"], 1e6 * np.cumprod(1.0 + step), rtol=2e-6)
    assert o["value"][-1] / 1e6 - 1 > 1e-4 and (o["dividends"] == 0).all()
    assert "T-bill" in cash_only.describe_costs()
    off = cash_only.replace(cash_earns_risk_free=jnp.float32(0.0))
    o = _episode(setup, off, start)
    assert (o["value"] == 1e6).all() and (o["risk_free"] == 0).all() and (o["interest"] == 0).all()
    assert "cash earns no interest" in off.describe_costs()


def test_held_shares_earn_the_dividend_yield_on_a_flat_price(setup):
    """On a flat price path with cash earning nothing, the book (long shares, or short shares) changes
    by the dividend only: shares x S x (exp(q d / 365) - 1) per step of d calendar days, paid to a long
    and by a short (q = the env's default, 2% a year: stated in every options report's cost note)."""
    from jaxtrade.envs.options.chain import SP500_DIVIDEND_YIELD

    S = 2000.0
    flat = setup.data.replace(close=jnp.full_like(setup.data.close, S))
    _, p = envs.make("options", flat, {**CONFIG, "cash_earns_risk_free": False})
    q = p.chain_config.dividend_yield
    assert q == SP500_DIVIDEND_YIELD == 0.02 and "2.00% a year" in p.describe_costs()
    start = setup.first + 60
    for weight in (0.5, -0.5):
        params = p.replace(turbulence_threshold=jnp.float32(np.inf), stock_weight=jnp.float32(weight))
        o = _episode(setup, params, start)
        shares = 1e6 * weight / S
        paid = shares * S * np.expm1(q * _calendar_days(setup, o["t"]) / 365.0)
        np.testing.assert_allclose(o["dividends"], paid, rtol=1e-5)
        # each step's change of NAV is that step's dividend, to float32 rounding of the cash ($0.125)
        np.testing.assert_allclose(np.diff(o["value"], prepend=1e6), paid, atol=0.25)
        # ... about q x the calendar time held of the shares' value
        years = (setup.market.day[o["t"][-1] + 1] - setup.market.day[start]) / 365.0
        assert abs((o["value"][-1] - 1e6) / (shares * S * q * years) - 1) < 1e-2


# 10. every action of the table is held for at least a step

def test_every_action_is_held_for_at_least_one_step(setup, main_run):
    """Each of the 90 opening actions, opened on a mid-week row and on the row before the longest
    market closure of the split (4 calendar days), executes and is still open after the next step
    under the default params (gate off): the 7-day multi-leg actions are held to their expiry, not
    force-closed the next day (defect: six of 91 actions were round trips)."""
    del main_run                                                      # compiles setup.batch first
    tab = st.numpy_table("full")
    opens = np.flatnonzero(tab.is_open)
    assert len(opens) == 90 and not tab.is_open[0]
    m = setup.market
    rows = np.arange(setup.first, setup.first + setup.n_starts)
    gap = np.diff(m.day)[rows]
    before_gap = int(rows[np.argmax(gap)])
    midweek = int(next(r for r in rows[50:] if _weekday(m.day[r]) == 2 and gap[r - setup.first] == 1))
    assert gap.max() >= 4
    keys = jax.random.split(jax.random.PRNGKey(0), N_ENVS)
    script = np.zeros((N_ENVS, N_STEPS), np.int32)
    script[: len(opens), 0] = opens
    for row in (midweek, before_gap):
        u0 = jnp.full((N_ENVS,), setup.u_for(row), jnp.float32)
        o = _np(setup.batch(setup.quiet, keys, u0, jnp.asarray(script)))
        o = jax.tree.map(lambda x: x[: len(opens)], o)
        assert (o["t"][:, 0] == row).all() and o["executed"][:, 0].all()
        held = o["slot_open"][:, 1].any(-1)
        assert held.all(), f"row {row}: actions {opens[~held]} closed after one step"
        assert not o["forced_close"][:, 1].any()
    # The 7-day ones (one per multi-leg family) settle at their expiry, never force-closed.
    seven = np.flatnonzero(tab.is_open & (tab.expiry_index[:, 0] == 0))
    assert len(seven) == 6
    led = replay(jax.tree.map(lambda x: x[seven - 1], o), m, setup.config(len(seven)))
    _assert_checks(led)
    _assert_identities(led)
    for i in seven - 1:
        expiry = int(o["leg_expiry"][i, 0, 0, 0])
        k = int(o["trade_closed"][i, :, 0].argmax())
        assert k > 1 and m.day[o["t"][i, k - 1]] < expiry <= m.day[o["t"][i, k]]
        assert not o["forced_close"][i, : k + 1].any() and o["fees"][i, k].sum() == 0
