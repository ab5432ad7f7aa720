"""An independent numpy (float64) replay of the options environment's book, for its tests.

`replay(out, market, config)` walks rollouts of the auto-reset options env (arrays [B, n, ...] recorded from
`info` and the observation; see test_options_env.py) step by step and re-derives, without calling
the environment's code, what every step must have done:

- which slots end (settlement on the first row with day >= expiry_day, forced closes at
  dte <= force_close_dte of slots opened with more days than that, the turbulence gate, a legacy
  close action), what settles (intrinsic value),
  which action executes (a masked one never does: it becomes 0) and into which slot it goes, with
  which legs (the strategy table, strikes spot x (1 + 1% offset), expiries day + 7 (e + 1)) and
  how many contracts (units x ratio);
- the mask of the observation (the slot limit, covered calls against free 100-share lots, the
  legacy closes of open slots);
- the fees of the fills by kind (the published 2024 flat rates and the $0.65 retail commission,
  written out here), bounds on the spread paid (half the bid-ask width of 2%..10% plus slippage of
  0.1%..10%, of the mid);
- the carry to row t + 1: interest on the cash after the trade at exp(r d / 365) - 1 (d calendar
  days; `info["risk_free"]`, 0 with cash_earns_risk_free off) and dividends of shares x close[t] x
  (exp(q d / 365) - 1);
- with its own Black-Scholes-Merton mids (scipy, float64, dividend yield q): the cash identity (cash
  after - cash before = legs ended marked at mid - legs opened at mid - fees - spread + interest +
  dividends), the NAV identity (value == cash + shares x close[t+1] + sum of side x qty x 100 x mid
  at t+1) and the PnL identity (value - value_before == mark-to-market PnL - fees - spread paid +
  interest + dividends).

It returns the residuals (float64 arrays [B, n]) and booleans of the discrete checks; the tests
assert on them with stated tolerances.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.special import ndtr

from jaxtrade.envs.options import strategies

MULT = 100.0
MIN_MID = 0.01                       # the chain's one-tick floor of a live option's mid
STRIKE_STEP = 0.01                   # the default chain: strikes spot x (1 + 1% j)
EXPIRY_STEP = 7                      # expiry index e lists at day + 7 (e + 1)
# mode="flat", profile "retail": PUBLISHED_RATES_2024 and the $0.65 commission (costs.py docstring)
COMMISSION, OCC, OCC_CAP, OCC_CAP_ABOVE, ORF, TAF, SEC, CAT = (0.65, 0.02, 55.0, 2750, 0.02685, 0.00279,
                                                             27.80e-6, 0.000046)
HALF_SPREAD_MIN, HALF_SPREAD_MAX, SLIP_MIN, SLIP_MAX = 0.01, 0.05, 0.001, 0.10


def bsm_mid(S, K, dte, r, iv, kind, q=0.0):
    """The chain's mid per share in float64: max(BSM price, $0.01) while dte > 0 (dividend yield q,
    no skew), intrinsic value from the expiry day on (dte <= 0)."""
    S, K, dte, r, iv = (np.asarray(x, np.float64) for x in (S, K, dte, r, iv))
    S, K, dte, r, iv = np.broadcast_arrays(S, K, dte, r, iv)
    put = np.asarray(kind) == strategies.PUT
    intrinsic = np.where(put, np.maximum(K - S, 0.0), np.maximum(S - K, 0.0))
    live = dte > 0
    tau = np.where(live, dte, 1.0) / 365.0
    sd = iv * np.sqrt(tau)
    Ks = np.where(K > 0, K, 1.0)
    d1 = (np.log(S / Ks) + (r - q + 0.5 * iv * iv) * tau) / sd
    d2 = d1 - sd
    disc, Sq = np.exp(-r * tau), S * np.exp(-q * tau)
    call = Sq * ndtr(d1) - K * disc * ndtr(d2)
    putp = K * disc * ndtr(-d2) - Sq * ndtr(-d1)
    price = np.where(put, putp, call)
    return np.where(live, np.maximum(price, MIN_MID), intrinsic)


@dataclasses.dataclass
class Market:
    """Row data of the split (float64 / int numpy [T])."""

    close: np.ndarray
    day: np.ndarray
    rate: np.ndarray
    iv: np.ndarray
    turbulence: np.ndarray


@dataclasses.dataclass
class Config:
    layout: str
    max_positions: int
    force_close_dte: int
    on_breach: str
    initial_cash: float
    stock_weight: np.ndarray          # [B]
    threshold: np.ndarray             # [B] turbulence threshold
    dividend_yield: float = 0.02      # q, continuous annual (the env's default)
    cash_earns_risk_free: bool = True


def replay(out: dict, m: Market, cfg: Config) -> dict:
    """Residuals and checks of every step of `out` (numpy arrays [B, n, ...]); see the module doc."""
    tab = strategies.numpy_table(cfg.layout)
    B, n = out["t"].shape
    P, L = cfg.max_positions, strategies.MAX_LEGS
    fcd = cfg.force_close_dte
    b_idx = np.arange(B)
    z = lambda *s, dt=np.float64: np.zeros((B, *s), dt)
    res = {k: z(n) for k in ("nav", "nav_scale", "nav_px", "pnl", "pnl_scale", "pnl_px", "cash", "cash_scale",
                             "cash_px", "value_before", "settled", "fee_kinds", "sec", "spread_lo",
                             "spread_hi", "reward", "n_legs_open", "risk_free", "interest",
                             "dividends")}
    chk = {k: z(n, dt=bool) for k in ("action", "ended", "executed_slot", "slot_open", "legs_new",
                                      "legs_held", "legs_closed", "units", "forced", "gate", "mask_slots",
                                      "mask_cc", "mask_close", "mask_hold", "masked_never_executes",
                                      "continuity")}
    # The ledger's book.
    open_ = np.zeros((B, P), bool)
    active = np.zeros((B, P, L), bool)
    side = z(P, L)
    kind = np.zeros((B, P, L), np.int32)
    strike = z(P, L)
    expiry = np.zeros((B, P, L), np.int64)
    qty = z(P, L)
    covers = z(P)
    close_day = np.zeros((B, P), np.int64)          # the day each slot is force-closed from
    shares = z()
    cash_prev = z()
    value_prev = z()
    new_episode = np.ones(B, bool)
    ic = cfg.initial_cash
    for k in range(n):
        t = out["t"][:, k]
        S, S1 = m.close[t], m.close[t + 1]
        day, day1 = m.day[t], m.day[t + 1]
        info = {key: v[:, k] for key, v in out.items() if isinstance(v, np.ndarray)}
        # A new episode: an empty book, stock_weight of the cash in shares at close[start].
        if new_episode.any():
            e = new_episode
            open_[e], active[e], qty[e], covers[e] = False, False, 0.0, 0.0
            shares[e] = ic * cfg.stock_weight[e] / S[e]
            cash_prev[e] = ic - shares[e] * S[e]
            value_prev[e] = ic
        res["value_before"][:, k] = info["value_before"] - value_prev
        chk["continuity"][:, k] = np.where(new_episode, np.abs(info["value_before"] - ic) <= 1e-7 * ic,
                                           info["value_before"] == value_prev)

        # The observation's mask (decided at row t - 1 for the actions at row t; calendar of row t).
        freeing = open_ & (day[:, None] >= close_day)
        n_after = open_.sum(-1) - freeing.sum(-1)
        mask = info["mask"]
        opens = tab.is_open
        chk["mask_slots"][:, k] = (n_after < P) | ~mask[:, opens].any(-1)
        chk["mask_hold"][:, k] = mask[:, 0]
        lots = np.floor(shares / MULT + 1e-6) - np.where(open_ & ~freeing, covers, 0.0).sum(-1)
        # A gated step opens nothing: the mask already says so (turbulence[t-1] is known at t-1).
        gated = m.turbulence[t - 1] > cfg.threshold
        cc_expected = (n_after < P)[:, None] & (lots >= 1)[:, None] & ~gated[:, None]
        chk["mask_slots"][:, k] &= ~(gated & mask[:, opens].any(-1))
        if tab.needs_shares.any():
            chk["mask_cc"][:, k] = (mask[:, tab.needs_shares] == cc_expected).all(-1)
        else:
            chk["mask_cc"][:, k] = True
        close_ids = np.flatnonzero(tab.close_slot >= 0)
        if len(close_ids):
            slot = tab.close_slot[close_ids]
            ok_slot = slot < P
            occupied = np.zeros((B, len(slot)), bool)
            occupied[:, ok_slot] = (open_ & ~freeing)[:, slot[ok_slot]]
            chk["mask_close"][:, k] = (mask[:, close_ids] == occupied).all(-1)
        else:
            chk["mask_close"][:, k] = True

        # 1. expiries; 2. closes; the action.
        expired_leg = active & (expiry <= day[:, None, None])
        expired = open_ & expired_leg.any(-1)
        intrinsic = np.where(kind == strategies.PUT, np.maximum(strike - S[:, None, None], 0.0),
                             np.maximum(S[:, None, None] - strike, 0.0))
        settle = np.where(expired_leg, side * qty * MULT * intrinsic, 0.0).sum((-1, -2))
        res["settled"][:, k] = info["settled"] - settle
        gate = m.turbulence[t - 1] > cfg.threshold
        chk["gate"][:, k] = info["gate"] == gate
        chosen = info["chosen"]
        allowed = mask[b_idx, chosen]
        act = np.where(allowed, chosen, 0)
        if cfg.on_breach == "close_all":
            act = np.where(gate, 0, act)
        else:
            act = np.where(gate & tab.is_open[act], 0, act)
        chk["action"][:, k] = info["action"] == act
        chk["masked_never_executes"][:, k] = allowed | ((info["action"] == 0) & ~info["executed"])
        forced = open_ & ~expired & (day[:, None] >= close_day)
        chk["forced"][:, k] = info["forced_close"] == forced.any(-1)
        closing = forced | (open_ & ~expired & (gate & (cfg.on_breach == "close_all"))[:, None])
        closing |= open_ & ~expired & (np.arange(P)[None] == tab.close_slot[act][:, None])
        ended = expired | closing
        chk["ended"][:, k] = (info["trade_closed"] == ended).all(-1)
        keep = open_ & ~ended

        # 3. the open: the first free slot, the table's legs.
        executed = info["executed"]
        has_free = ~keep.all(-1)
        slot_new = np.argmin(keep, -1)
        onehot = (np.arange(P)[None] == slot_new[:, None]) & executed[:, None]
        chk["executed_slot"][:, k] = ~executed | (tab.is_open[act] & has_free & allowed)
        chk["slot_open"][:, k] = (info["slot_open"] == (keep | onehot)).all(-1)
        units = info["units"]
        chk["units"][:, k] = np.where(executed, (units >= 1) & (units == np.floor(units)), units == 0)
        a_leg_active = tab.active[act]                                      # [B, L]
        n_side = tab.side[act].astype(np.float64)
        n_kind = tab.kind[act]
        n_qty = np.where(a_leg_active, units[:, None] * tab.ratio[act], 0.0)
        n_strike_expected = S[:, None] * (1.0 + STRIKE_STEP * tab.strike_offset[act])
        n_expiry_expected = day[:, None] + EXPIRY_STEP * (tab.expiry_index[act] + 1)
        ls, le, lq = info["leg_strike"], info["leg_expiry"], info["leg_qty"]
        ls_new, le_new = ls[b_idx, slot_new], le[b_idx, slot_new]
        lq_new = lq[b_idx, slot_new]
        ok_new = (np.isclose(ls_new, n_strike_expected, rtol=2e-7, atol=0) | ~a_leg_active).all(-1)
        ok_new &= ((le_new == n_expiry_expected) | ~a_leg_active).all(-1)
        ok_new &= (lq_new == n_qty).all(-1)
        chk["legs_new"][:, k] = ~executed | ok_new
        held = keep
        chk["legs_held"][:, k] = np.where(
            held[..., None], (ls == strike) & (le == expiry) & (lq == np.where(active, qty, 0.0)),
            True).all((-1, -2))
        vacated = ~(keep | onehot)
        chk["legs_closed"][:, k] = np.where(vacated[..., None], lq == 0.0, True).all((-1, -2))

        # Prices (own BSM): the old legs at row t, the new legs at row t, the book after at row t + 1.
        q = cfg.dividend_yield
        m0 = bsm_mid(S[:, None, None], strike, expiry - day[:, None, None], m.rate[t][:, None, None],
                     m.iv[t][:, None, None], kind, q)
        m0_new = bsm_mid(S[:, None], ls_new, le_new - day[:, None], m.rate[t][:, None], m.iv[t][:, None],
                         n_kind, q)
        # The ledger's book after the step.
        new_active = np.where(onehot[..., None], a_leg_active[:, None], active & keep[..., None])
        new_side = np.where(onehot[..., None], n_side[:, None], side)
        new_kind = np.where(onehot[..., None], n_kind[:, None], kind)
        new_strike = np.where(onehot[..., None], ls_new[:, None], strike)
        new_expiry = np.where(onehot[..., None], le_new[:, None], expiry)
        new_qty = np.where(onehot[..., None], n_qty[:, None], qty)
        cc = tab.needs_shares[act]
        new_covers = np.where(onehot, np.where(cc, units, 0.0)[:, None], covers)
        # A slot opened with more than fcd days left is force-closed fcd days before its first expiry;
        # one opened inside that window is held to its expiry.
        first_exp = np.where(a_leg_active, n_expiry_expected, np.iinfo(np.int64).max).min(-1)
        opened_close_day = np.where(first_exp - day > fcd, first_exp - fcd, first_exp)
        new_close_day = np.where(onehot, opened_close_day[:, None], close_day)
        m1 = bsm_mid(S1[:, None, None], new_strike, new_expiry - day1[:, None, None],
                     m.rate[t + 1][:, None, None], m.iv[t + 1][:, None, None], new_kind, q)
        sq_old = np.where(active, side * qty * MULT, 0.0)
        sq_new = np.where(a_leg_active & executed[:, None], n_side * n_qty * MULT, 0.0)
        sq_post = np.where(new_active, new_side * new_qty * MULT, 0.0)
        fees = info["fees"].sum(-1)
        spread = info["spread_paid"]
        gone = ended[..., None] & active
        cash_flow = (np.where(gone, sq_old * m0, 0.0).sum((-1, -2)) - (sq_new * m0_new).sum(-1)
                     - fees - spread)
        # The carry to row t + 1: interest on the cash after the trade, dividends on the shares.
        days = (day1 - day).astype(np.float64)
        rf = np.expm1(m.rate[t] * days / 365.0) if cfg.cash_earns_risk_free else np.zeros(B)
        interest = (cash_prev + cash_flow) * rf
        dividends = shares * S * np.expm1(q * days / 365.0)
        res["risk_free"][:, k] = info["risk_free"] - rf
        res["interest"][:, k] = info["interest"] - interest
        res["dividends"][:, k] = info["dividends"] - dividends
        cash_flow = cash_flow + interest + dividends
        cash = info["cash"]
        # Scales of the float32 error: dollars held or moved, and shares-equivalent x spot priced.
        res["cash"][:, k] = (cash - cash_prev) - cash_flow
        gone_q = np.where(gone, np.abs(sq_old), 0.0).sum((-1, -2))
        res["cash_scale"][:, k] = (np.abs(cash) + np.abs(cash_prev) + np.abs(cash_flow)
                                   + np.where(gone, np.abs(sq_old * m0), 0.0).sum((-1, -2)))
        res["cash_px"][:, k] = (gone_q + np.abs(sq_new).sum(-1)) * S
        nav = cash + shares * S1 + (sq_post * m1).sum((-1, -2))
        value = info["value"]
        res["nav"][:, k] = value - nav
        res["nav_scale"][:, k] = np.abs(cash) + shares * S1 + np.abs(sq_post * m1).sum((-1, -2))
        res["nav_px"][:, k] = np.abs(sq_post).sum((-1, -2)) * S1
        res["n_legs_open"][:, k] = new_active.sum((-1, -2))
        held_legs = active & keep[..., None]
        mtm = (shares * (S1 - S) + np.where(held_legs, sq_old * (m1 - m0), 0.0).sum((-1, -2))
               + np.where(onehot[..., None], sq_post * (m1 - m0_new[:, None]), 0.0).sum((-1, -2)))
        res["pnl"][:, k] = (value - info["value_before"]) - (mtm - fees - spread + interest + dividends)
        res["pnl_scale"][:, k] = np.abs(value) + np.abs(info["value_before"])
        res["pnl_px"][:, k] = (np.abs(sq_old).sum((-1, -2)) + np.abs(sq_post).sum((-1, -2))) * S1
        res["reward"][:, k] = info["reward"] - np.log(value / info["value_before"])

        # Fees by kind and spread bounds over the fills: closes of ended, unexpired slots and the open.
        closed_legs = (closing & ~expired)[..., None] & active                # [B, P, L]
        q_close = np.where(closed_legs, qty, 0.0)
        q_open = np.where(a_leg_active & executed[:, None], n_qty, 0.0)
        sold_close = np.where(side > 0, q_close, 0.0)                          # a long is sold to close
        sold_open = np.where(n_side < 0, q_open, 0.0)
        Q = q_close.sum((-1, -2)) + q_open.sum(-1)
        Q_sold = sold_close.sum((-1, -2)) + sold_open.sum(-1)
        occ = lambda q: np.where(q > OCC_CAP_ABOVE, OCC_CAP, OCC * q) * (q > 0)
        expected = np.stack([COMMISSION * Q, occ(q_close).sum((-1, -2)) + occ(q_open).sum(-1), ORF * Q,
                             TAF * Q_sold, np.zeros(B), CAT * MULT * Q], -1)
        got = info["fees"]
        kinds = [0, 1, 2, 3, 5]
        res["fee_kinds"][:, k] = np.abs(got[:, kinds] - expected[:, kinds]).max(-1) / (1e-3 + 1e-5 * Q)
        sec = SEC * MULT * ((sold_close * m0).sum((-1, -2)) + (sold_open * m0_new).sum(-1))
        res["sec"][:, k] = np.abs(got[:, 4] - sec) / (1e-6 + 0.2 * sec)
        traded = MULT * ((q_close * m0).sum((-1, -2)) + (q_open * m0_new).sum(-1))
        half_max = (1 + HALF_SPREAD_MAX) * (1 + SLIP_MAX) - 1
        res["spread_lo"][:, k] = spread - HALF_SPREAD_MIN * traded * (1 - 1e-5)         # >= 0
        res["spread_hi"][:, k] = half_max * traded * (1 + 1e-5) + 1e-3 - spread       # >= 0

        # Advance the ledger.
        open_ = keep | onehot
        active, side, kind, strike, expiry, qty, covers = (new_active, new_side, new_kind, new_strike,
                                                           new_expiry, new_qty, new_covers)
        close_day = new_close_day
        cash_prev = cash.astype(np.float64)
        value_prev = value.astype(np.float64)
        new_episode = info["done"].astype(bool)
    return {"res": res, "chk": chk}


def first_failure(ok: np.ndarray) -> str:
    """'env b step k' of the first False of a [B, n] array (for assertion messages)."""
    bad = np.argwhere(~ok)
    return "none" if len(bad) == 0 else f"env {bad[0][0]} step {bad[0][1]} ({len(bad)} failing)"
