"""The options action table (jaxtrade.envs.options.strategies): layout, legs, labels, mask."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.envs.options import strategies as st

FULL = st.numpy_table("full")
LEGACY = st.numpy_table("legacy")

# Family -> action ids, as the issue lays them out.
FULL_RANGES = {
    st.HOLD: range(0, 1),
    st.BUY_CALL: range(1, 16),
    st.BUY_PUT: range(16, 31),
    st.COVERED_CALL: range(31, 46),
    st.CASH_SECURED_PUT: range(46, 61),
    st.BULL_CALL_SPREAD: range(61, 66),
    st.BEAR_PUT_SPREAD: range(66, 71),
    st.LONG_STRADDLE: range(71, 76),
    st.LONG_STRANGLE: range(76, 81),
    st.IRON_CONDOR: range(81, 86),
    st.BUTTERFLY: range(86, 91),
}
MULTI = (st.BULL_CALL_SPREAD, st.BEAR_PUT_SPREAD, st.LONG_STRADDLE, st.LONG_STRANGLE, st.IRON_CONDOR,
         st.BUTTERFLY)
C, P = st.CALL, st.PUT


def active_legs(t: st.NumpyTable, a: int) -> list[tuple[int, int, int, int, int]]:
    """(kind, side, offset, expiry, ratio) of the active legs of action a."""
    return [(int(t.kind[a, j]), int(t.side[a, j]), int(t.strike_offset[a, j]), int(t.expiry_index[a, j]),
             int(t.ratio[a, j])) for j in range(st.MAX_LEGS) if t.active[a, j]]


def test_sizes_and_family_ranges():
    assert len(FULL.labels) == st.N_ACTIONS == 91 and st.n_actions("full") == 91
    assert len(LEGACY.labels) == st.LEGACY_N_ACTIONS == 31 and st.n_actions("legacy") == 31
    for fam, ids in FULL_RANGES.items():
        np.testing.assert_array_equal(np.flatnonzero(FULL.family == fam), np.asarray(ids),
                                      err_msg=st.FAMILIES[fam])
    counts = {st.FAMILIES[f]: int(n) for f, n in zip(*np.unique(FULL.family, return_counts=True),
                                                       strict=True)}
    assert counts == {"hold": 1, "buy_call": 15, "buy_put": 15, "covered_call": 15,
                      "cash_secured_put": 15, "bull_call_spread": 5, "bear_put_spread": 5,
                      "long_straddle": 5, "long_strangle": 5, "iron_condor": 5, "butterfly": 5}


def test_single_leg_families_span_the_strikes_at_one_expiry():
    kinds_sides = {st.BUY_CALL: (C, 1), st.BUY_PUT: (P, 1), st.COVERED_CALL: (C, -1),
                   st.CASH_SECURED_PUT: (P, -1)}
    for fam, (kind, side) in kinds_sides.items():
        legs = [active_legs(FULL, a) for a in FULL_RANGES[fam]]
        assert legs == [[(kind, side, off, st.SINGLE_LEG_EXPIRY, 1)] for off in range(-7, 8)], fam
    assert st.SINGLE_LEG_EXPIRY == 3 and st.action_label(8) == "buy call ATM 28d"


def test_variation_k_is_expiry_k_minus_1_for_every_multi_leg_family():
    for fam in MULTI:
        for k, a in enumerate(FULL_RANGES[fam], start=1):
            assert FULL.variation[a] == k
            exps = {leg[3] for leg in active_legs(FULL, a)}
            assert exps == {k - 1}, (st.FAMILIES[fam], k, exps)
            assert st.action_label(a).endswith(f" {7 * k}d")
        # the five variations differ only in expiry
        strikes = {tuple((kd, sd, off, r) for kd, sd, off, _, r in active_legs(FULL, a))
                   for a in FULL_RANGES[fam]}
        assert len(strikes) == 1, st.FAMILIES[fam]


def test_legs_of_each_multi_leg_family():
    expected = {   # (kind, side, offset, ratio), ordered by strike
        st.BULL_CALL_SPREAD: [(C, 1, 0, 1), (C, -1, 2, 1)],
        st.BEAR_PUT_SPREAD: [(P, -1, -2, 1), (P, 1, 0, 1)],
        st.LONG_STRADDLE: [(P, 1, 0, 1), (C, 1, 0, 1)],
        st.LONG_STRANGLE: [(P, 1, -2, 1), (C, 1, 2, 1)],
        st.IRON_CONDOR: [(P, 1, -4, 1), (P, -1, -2, 1), (C, -1, 2, 1), (C, 1, 4, 1)],
        st.BUTTERFLY: [(C, 1, -2, 1), (C, -1, 0, 2), (C, 1, 2, 1)],
    }
    for fam, legs in expected.items():
        for a in FULL_RANGES[fam]:
            assert [(kd, sd, off, r) for kd, sd, off, _, r in active_legs(FULL, a)] == legs, \
                st.FAMILIES[fam]
            assert FULL.n_legs[a] == len(legs)


def _bs(S, K, tau, sigma, kind):
    """Black-Scholes, r = q = 0 (self-contained: pricing.py is tested on its own)."""
    d1 = (math.log(S / K) + 0.5 * sigma**2 * tau) / (sigma * math.sqrt(tau))
    d2 = d1 - sigma * math.sqrt(tau)
    N = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))
    return S * N(d1) - K * N(d2) if kind == C else K * N(-d2) - S * N(-d1)


def test_flags_credit_and_payoff_shapes():
    """The flags follow the legs: credit = net premium received at a Black-Scholes price; each
    family's payoff at expiry has the shape its name promises."""
    S, step = 100.0, 0.01
    grid = np.linspace(80, 120, 401)
    for a in range(st.N_ACTIONS):
        legs = active_legs(FULL, a)
        assert FULL.is_open[a] == bool(legs) and FULL.close_slot[a] == -1
        assert FULL.needs_shares[a] == (FULL.family[a] == st.COVERED_CALL)
        assert FULL.cash_secured[a] == (FULL.family[a] == st.CASH_SECURED_PUT)
        # inactive legs are all zeros
        off = ~FULL.active[a]
        for f in (FULL.kind, FULL.side, FULL.strike_offset, FULL.expiry_index, FULL.ratio):
            assert not f[a][off].any()
        if not legs:
            continue
        premium = sum(-sd * r * _bs(S, S * (1 + step * o), 7 * (e + 1) / 365, 0.2, kd)
                      for kd, sd, o, e, r in legs)   # cash received at open
        assert FULL.is_credit[a] == (premium > 0), st.action_label(a)
        payoff = sum(sd * r * np.maximum(0, (grid - S * (1 + step * o)) * (1 if kd == C else -1))
                     for kd, sd, o, _, r in legs)
        fam = FULL.family[a]
        if fam in (st.LONG_STRADDLE, st.LONG_STRANGLE, st.BUTTERFLY):
            assert payoff.min() >= 0
        if fam == st.IRON_CONDOR:
            assert payoff.max() <= 1e-9 and payoff.min() >= -2 * step * S - 1e-9
        if fam == st.BULL_CALL_SPREAD:
            assert (np.diff(payoff) >= -1e-12).all() and np.ptp(payoff) == pytest.approx(2 * step * S)
        if fam == st.BEAR_PUT_SPREAD:
            assert (np.diff(payoff) <= 1e-12).all() and np.ptp(payoff) == pytest.approx(2 * step * S)
        if fam == st.BUTTERFLY:
            assert grid[payoff.argmax()] == pytest.approx(S) and payoff[0] == payoff[-1] == 0
    assert set(FULL.family[FULL.is_credit]) == {st.COVERED_CALL, st.CASH_SECURED_PUT, st.IRON_CONDOR}


def test_legacy_layout():
    assert [st.FAMILIES[f] for f in LEGACY.family] == (["hold"] + ["buy_call"] * 10 + ["buy_put"] * 10
                                                       + ["close"] * 10)
    for base, kind in ((1, C), (11, P)):
        assert [active_legs(LEGACY, a) for a in range(base, base + 10)] == \
            [[(kind, 1, off, st.SINGLE_LEG_EXPIRY, 1)] for off in range(-5, 5)]
    np.testing.assert_array_equal(LEGACY.close_slot, [-1] * 21 + list(range(10)))
    assert not LEGACY.active[21:].any() and not LEGACY.is_open[21:].any() and LEGACY.is_open[1:21].all()
    assert st.action_label(30, "legacy") == "close slot 9"
    assert st.action_label(1, "legacy") == "buy call K-5 28d"


def test_labels_and_markdown():
    for layout, t in (("full", FULL), ("legacy", LEGACY)):
        assert len(set(t.labels)) == len(t.labels), layout
        assert [st.action_label(a, layout) for a in range(len(t.labels))] == list(t.labels)
        with pytest.raises(IndexError):
            st.action_label(len(t.labels), layout)
        md = st.action_table_markdown(layout)
        rows = [line for line in md.splitlines() if line.startswith("| ") and line[2].isdigit()]
        assert len(rows) == len(t.labels)
        for a, row in enumerate(rows):
            assert row.startswith(f"| {a} | {t.labels[a]} | {st.FAMILIES[t.family[a]]} |")
    md = st.action_table_markdown("full")
    assert "| 85 | iron condor 35d | iron_condor | +1 P K-4 35d, -1 P K-2 35d, -1 C K+2 35d, " \
           "+1 C K+4 35d | credit |" in md
    assert "-2 C ATM 7d" in md   # the butterfly body


def test_action_table_pytree_and_errors():
    for layout, t in (("full", FULL), ("legacy", LEGACY)):
        tab = st.action_table(layout)
        assert tab.layout == layout and tab.n_actions == len(t.labels)
        for name in st.NumpyTable._fields[:-1]:
            np.testing.assert_array_equal(np.asarray(getattr(tab, name)), getattr(t, name), err_msg=name)
        assert tab.active.shape == (len(t.labels), st.MAX_LEGS) and tab.active.dtype == jnp.bool_
        assert tab.kind.dtype == tab.strike_offset.dtype == tab.close_slot.dtype == jnp.int32
        assert len(jax.tree_util.tree_leaves(tab)) == len(st.NumpyTable._fields) - 1
    with pytest.raises(ValueError, match="unknown action layout"):
        st.action_table("wide")
    with pytest.raises(ValueError, match="n_strikes=11"):
        st.action_table(n_strikes=11)
    with pytest.raises(ValueError, match="n_expiries=4"):
        st.action_table("legacy", n_expiries=4)
    legs = st.action_table().legs(jnp.array([0, 85, 200]))   # 200 clips to the last action
    np.testing.assert_array_equal(legs.strike_index[1], [3, 5, 9, 11])
    np.testing.assert_array_equal(legs.active[0], [False] * 4)
    np.testing.assert_array_equal(legs.ratio[2], [1, 2, 1, 0])


_jit_mask = jax.jit(st.structural_mask, static_argnames=("per_leg_slots",))


def _mask(layout="full", n_open=0, max_pos=4, shares=0.0, cash=0.0, coll=None, slots=None, eager=False,
          **kw):
    """The mask of one state (jitted: one compile per argument structure; eager=True op by op)."""
    tab = st.action_table(layout)
    coll = jnp.zeros(tab.n_actions) if coll is None else coll
    f = st.structural_mask if eager else _jit_mask
    return np.asarray(f(tab, n_open, max_pos, shares, cash, coll, slots, **kw))


def test_mask_slots_shares_cash():
    opens = FULL.is_open
    cc, csp = FULL.family == st.COVERED_CALL, FULL.family == st.CASH_SECURED_PUT
    rich = dict(shares=10.0, cash=1e9)
    # free slots and plenty of shares and cash: everything allowed
    assert _mask(n_open=3, max_pos=4, **rich).all()
    # all slots full: every open masked, hold still allowed
    m = _mask(n_open=4, max_pos=4, **rich)
    assert m[0] and not m[opens].any()
    # a ledger of single legs: 2 free slots admit up to 2-leg positions only
    m = _mask(n_open=2, max_pos=4, per_leg_slots=True, **rich)
    np.testing.assert_array_equal(m[opens], FULL.n_legs[opens] <= 2)
    # no uncovered shares: only the covered calls go
    m = _mask(shares=0.0, cash=1e9)
    np.testing.assert_array_equal(m, ~cc)
    assert _mask(shares=1.0, cash=1e9).all()
    # cash: collateral strike x 100, cash covers the strikes up to ATM only
    strikes = 100.0 * (1 + 0.01 * FULL.strike_offset[:, 0])
    coll = jnp.asarray(np.where(csp, strikes * 100, np.nan), jnp.float32)  # NaN elsewhere is ignored
    m = _mask(shares=1.0, cash=100.0 * 100, coll=coll)
    np.testing.assert_array_equal(m[csp], FULL.strike_offset[csp, 0] <= 0)
    assert m[~csp].all()
    # NaN collateral (an untradable strike) masks that put
    m = _mask(shares=1.0, cash=1e9, coll=coll.at[46].set(jnp.nan))
    assert not m[46] and m[47]


def test_mask_legacy_closes():
    slots = jnp.array([True, False, True, True, False, False])   # 6-slot ledger, slots 0, 2, 3 open
    m = _mask("legacy", max_pos=6, slots=slots, n_open=None)
    np.testing.assert_array_equal(m[21:], [True, False, True, True] + [False] * 6)
    assert m[:21].all()
    m = _mask("legacy", max_pos=3, slots=slots, n_open=None)   # 3 open of 3: opens masked, slot 3 out
    np.testing.assert_array_equal(m[21:], [True, False, True] + [False] * 7)
    assert m[0] and not m[1:21].any()
    m = _mask("legacy", n_open=2, max_pos=10)   # compact ledger: slots 0 and 1 open
    np.testing.assert_array_equal(m[21:], [True, True] + [False] * 8)
    m = _mask("legacy", n_open=0, max_pos=10, slots=jnp.zeros(0, bool))
    assert not m[21:].any() and m[:21].all()


def test_mask_jit_vmap_matches_eager():
    tab = st.action_table("legacy")
    n_slots = 10
    rng = np.random.default_rng(0)
    B = 5
    slots = rng.random((B, n_slots)) < 0.4
    shares = rng.integers(0, 2, B).astype(np.float32)
    cash = rng.uniform(0, 2e4, B).astype(np.float32)
    coll = rng.uniform(0, 2e4, (B, tab.n_actions)).astype(np.float32)
    max_pos = np.array([10, 3, 5, 10, 1], np.int32)
    f = jax.jit(jax.vmap(lambda t, s, mp, sh, c, co: st.structural_mask(t, None, mp, sh, c, co, s),
                         in_axes=(None, 0, 0, 0, 0, 0)))
    got = np.asarray(f(tab, slots, max_pos, shares, cash, coll))
    assert got.shape == (B, tab.n_actions)
    for b in range(B):
        want = _mask("legacy", n_open=None, max_pos=int(max_pos[b]), shares=float(shares[b]),
                     cash=float(cash[b]), coll=jnp.asarray(coll[b]), slots=jnp.asarray(slots[b]),
                     eager=True)
        np.testing.assert_array_equal(got[b], want)
        # by hand: closes follow the open slots below max_positions, opens the slot count
        np.testing.assert_array_equal(got[b, 21:], slots[b] & (np.arange(n_slots) < max_pos[b]))
        assert got[b, 1:21].all() == (slots[b].sum() < max_pos[b])
    # the full table through jit and vmap too (covered calls follow the shares)
    full = st.action_table()
    g = jax.jit(jax.vmap(lambda sh: st.structural_mask(full, 0, 4, sh, 0.0, jnp.zeros(91)))) \
        (jnp.array([0.0, 1.0]))
    np.testing.assert_array_equal(np.asarray(g[:, 31:46]), [[False] * 15, [True] * 15])
    np.testing.assert_array_equal(np.asarray(g[:, 46:61]), [[True] * 15, [True] * 15])
