"""FX lots in the `single` env (a worked example by hand) and padded training data (`pad_rows`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from envs_testlib import envdata_from_close, make_rollout, run_actions

from jaxtrade import envs
from jaxtrade.data.dates import rollover_days
from jaxtrade.data.envdata import pad_rows
from jaxtrade.envs import lots

SHORT, FLAT, LONG = 0, 1, 2
COSTS_OFF = dict(spread_bps=0.0, slippage_bps=0.0, impact_model="none", regulatory_fees="none")
LOTS = dict(
    enabled=True,
    contract_size=100_000.0,
    lot_step=0.01,
    min_lots=0.01,
    max_lots=50.0,
    pip_size=0.0001,
    spread_pips=0.2,
    commission_per_lot=3.5,
    swap_long_pips=-0.6,
    swap_short_pips=0.25,
)


def fx_data():
    """4 history rows, then Thu 2017-01-05, Fri, Mon, Tue, Wed, Thu: EUR/USD closes."""
    close = np.array([1.1, 1.1, 1.1, 1.1, 1.1000, 1.1050, 1.1020, 1.1100, 1.1100, 1.1100])[:, None]
    dates = pd.DatetimeIndex(
        [
            "2016-12-30",
            "2017-01-02",
            "2017-01-03",
            "2017-01-04",
            "2017-01-05",
            "2017-01-06",
            "2017-01-09",
            "2017-01-10",
            "2017-01-11",
            "2017-01-12",
        ]
    )
    day = jnp.asarray(np.asarray(dates.values, "datetime64[D]").astype(np.int32))
    return envdata_from_close(close, start=4).replace(day=day, rollover=jnp.asarray(rollover_days(dates)))


def test_worked_example_in_lots_with_spread_commission_and_weekend_swap():
    env, params = envs.make(
        "single",
        fx_data(),
        dict(window=4, random_start=False, initial_cash=100_000.0, costs=COSTS_OFF, lots=LOTS),
    )
    out = run_actions(jax.jit(env.reset), jax.jit(env.step), params, [LONG, LONG, SHORT])
    holdings = [float(o[1].holdings[0]) for o in out[1:]]
    costs = [float(o[4]["costs"]) for o in out[1:]]
    swap = [float(o[4]["swap"]) for o in out[1:]]
    values = [float(o[4]["value"]) for o in out[1:]]
    # Long 1x of $100,000 at 1.1000 is 0.91 lots, which the cash floor cuts to 0.90 (91,000 EUR cost
    # $100,100 + costs); 0.90 lots pay 0.1 pip x 90,000 = $0.90 of spread + 0.9 x $3.50 commission.
    # Thursday -> Friday is one night of swap (0.9 x -0.6 pips x $10), Friday -> Monday three.
    # Monday: short 1x of $100,154.35 at 1.1020 = 0.91 lots; the fill sells 1.81 lots.
    assert holdings == pytest.approx([90_000.0, 90_000.0, -91_000.0], abs=1e-2)
    np.testing.assert_allclose(costs, [0.9 + 3.15, 0.0, 1.81 + 6.335], rtol=1e-5)
    np.testing.assert_allclose(swap, [-5.4, -16.2, 0.91 * 0.25 * 10.0], rtol=1e-5)
    cash1 = 100_000 - 90_000 * 1.1 - 4.05 - 5.4
    cash2 = cash1 - 16.2
    cash3 = cash2 + 181_000 * 1.102 - 8.145 + 2.275
    np.testing.assert_allclose(
        values, [cash1 + 90_000 * 1.105, cash2 + 90_000 * 1.102, cash3 - 91_000 * 1.11], rtol=2e-7
    )
    assert float(out[3][1].cash) == pytest.approx(cash3, rel=2e-7)


def test_swap_is_booked_at_the_17_00_new_york_rollover_in_winter_and_summer():
    """Hourly bars held long: swap falls on the step that crosses 17:00 New York (22:00 UTC in January,
    21:00 UTC in July), not on the one that crosses UTC midnight."""
    stamps = pd.DatetimeIndex(
        [f"2017-01-05 {h}:00" for h in (16, 17, 18, 19)]          # history
        + [f"2017-01-05 {h}:00" for h in (20, 21, 22, 23)] + ["2017-01-06 00:00"]   # EST: 15:00 .. 19:00
        + [f"2017-07-06 {h}:00" for h in (20, 21, 22)]           # EDT: 16:00 .. 18:00
    )
    data = envdata_from_close(np.full((len(stamps), 1), 1.1), start=4)
    data = data.replace(rollover=jnp.asarray(rollover_days(stamps)))
    swap_only = {**LOTS, "spread_pips": 0.0, "commission_per_lot": 0.0}
    env, params = envs.make("single", data, dict(window=4, random_start=False, initial_cash=100_000.0,
                                                 costs=COSTS_OFF, lots=swap_only))
    out = run_actions(jax.jit(env.reset), jax.jit(env.step), params, [LONG] * 7)
    # Steps from 20:00 UTC: 20->21 none; 21->22 (16:00 -> 17:00 EST) one; 22->23 none; 23->00 (UTC
    # midnight) none; Jan 6 00:00 (19:00 EST Jan 5) -> Jul 6 20:00 (16:00 EDT): Jan 6 .. Jul 5, 181;
    # Jul 20->21 (16:00 -> 17:00 EDT) one; 21->22 none.
    nights = [0, 1, 0, 0, 181, 1, 0]
    lots_held = float(out[1][1].holdings[0]) / 100_000.0
    assert lots_held == pytest.approx(0.9)
    np.testing.assert_allclose([float(o[4]["swap"]) for o in out[1:]],
                               [lots_held * -0.6 * 10.0 * n for n in nights], rtol=1e-5)


def test_lot_rounding_limits_and_errors():
    p = jax.tree.map(jnp.asarray, lots.LotParams(**{**LOTS, "max_lots": 2.0, "min_lots": 0.05}))
    q = np.asarray(lots.quantize(jnp.asarray([123_456.0, -4_000.0, 1_000_000.0, -1_000_000.0, 5_100.0]), p))
    np.testing.assert_allclose(q, [123_000.0, 0.0, 200_000.0, -200_000.0, 5_000.0])
    np.testing.assert_allclose(
        np.asarray(lots.floor_position(jnp.asarray([90_990.0, 90_000.0, -1_500.0, -6_500.0]), p)),
        [90_000.0, 90_000.0, 0.0, -7_000.0],
    )  # towards -inf; -0.02 lots is under min_lots
    for bad, match in (
        (dict(enabled=False, spread_pips=0.2), "env.lots.spread_pips, .* set but env.lots.enabled is False"),
        (dict(lot_step=0.0), r"env.lots.lot_step must be > 0"),
        (dict(min_lots=3.0, max_lots=2.0), "min_lots <= max_lots"),
        (dict(commission_per_lot=-1.0), r"env.lots.commission_per_lot must be >= 0"),
    ):
        with pytest.raises(ValueError, match=match):
            envs.make("single", fx_data(), dict(window=4, random_start=False, lots={**LOTS, **bad}))
    with pytest.raises(ValueError, match="unknown env config key 'env.lots"):
        envs.make("portfolio", fx_data(), dict(window=4, lots={"enabled": True}))


def test_lots_off_is_the_plain_env(tiny_data):
    """Without lots.enabled the env is the one the numpy oracle checks: the same steps bit for bit."""
    a = envs.make("single", tiny_data, dict(window=8, episode_length=16))
    b = envs.make("single", tiny_data, dict(window=8, episode_length=16, lots={"enabled": False}))
    ra, rb = (jax.jit(make_rollout(e, 4, 24))(p, jax.random.key(3)) for e, p in (a, b))
    for x, y in zip(jax.tree.leaves(ra), jax.tree.leaves(rb), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_padded_data_give_the_same_episodes_and_never_reach_the_padding(tiny_data):
    cfg = dict(asset=1, window=8, episode_length=16)
    env, params = envs.make("single", tiny_data, cfg)
    _, padded = envs.make("single", pad_rows(tiny_data, 150), cfg)
    assert padded.data.n_rows == 150 and int(padded.data.valid_rows) == tiny_data.n_rows
    ra = jax.jit(make_rollout(env, 8, 40))(params, jax.random.key(1))
    rb = jax.jit(make_rollout(env, 8, 40))(padded, jax.random.key(1))
    for x, y in zip(jax.tree.leaves(ra), jax.tree.leaves(rb), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    ends = jax.vmap(lambda k: env.reset(k, padded)[1].end)(jax.random.split(jax.random.key(0), 2000))
    assert int(ends.max()) == tiny_data.n_rows - 1  # the last real row is reached, no padding row
    with pytest.raises(ValueError, match="random-start training only"):
        envs.make("single", pad_rows(tiny_data, 150), dict(cfg, random_start=False))
