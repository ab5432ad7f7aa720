"""The options env's action space: a static lookup table of option legs per discrete action.

Every action is a row of a table built once with numpy at import: up to `MAX_LEGS` = 4 legs, each
(active, kind, side, strike_offset, expiry_index, ratio), plus per-action flags. The env's `step`
gathers the row of the chosen action and works on its legs with `jnp.where`; no Python branch
looks at the action.

Grid. Strikes are the chain's 15 strikes of the day (`ChainConfig.n_strikes`), indexed 0..14 with
the at-the-money strike at index `ATM_INDEX` = 7; a leg's `strike_offset` (-7..7) is its index
minus 7, so offset +2 is two strike steps (`ChainConfig.strike_step`, 1% of spot by default) above
ATM. Expiries are the chain's 5 expiries, `expiry_index` 0..4 = 7, 14, 21, 28, 35 calendar days
with the default 7-day step (labels say "7d".."35d" on that default; the env uses the chain's dte).

Full layout, `Discrete(91)` (`layout="full"`):

    0        hold
    1-15     buy a call,            offsets -7..7, expiry index 3 (28 d)
    16-30    buy a put,             offsets -7..7, expiry index 3 (28 d)
    31-45    sell a covered call,   offsets -7..7, expiry index 3 (28 d)   needs_shares
    46-60    sell a cash-secured put, offsets -7..7, expiry index 3 (28 d) cash_secured
    61-65    bull call spread   +1 call ATM, -1 call +2
    66-70    bear put spread    +1 put ATM,  -1 put -2
    71-75    long straddle      +1 put ATM,  +1 call ATM
    76-80    long strangle      +1 put -2,   +1 call +2
    81-85    iron condor        +1 put -4, -1 put -2, -1 call +2, +1 call +4
    86-90    long call butterfly  +1 call -2, -2 call ATM, +1 call +2

  For every multi-leg family, variation k = 1..5 (action = first + k - 1) puts all its legs on
  expiry index k - 1 (7k days); the strikes are the same across the five variations. The 7-day
  variations open inside the env's default force-close window (`force_close_dte` = 7): the env holds
  them to their expiry instead of closing them the next day (`envs.options.env`, point 2), so none of
  the 91 actions is a round trip.

  Single-leg expiry: index 3 (28 days) for all four single-leg families. Reasons: it is the grid
  point nearest 30 days, the horizon of the VIX and of most quoted at-the-money implied vols (the
  chain's default IV source), so its prices lean least on the flat-term-structure assumption; and
  it is long enough that a daily-stepped agent can hold a position for about four weeks before
  expiry forces it out, without being the last expiry (35 d) that the chain rolls away from first.
  The 7..35-day horizons stay available through the multi-leg families.

  Multi-leg strikes: wings are 2 strike steps from ATM (4 for the condor's outer wings), the
  narrowest spacing that keeps every leg distinct and inside the 15-strike grid with room to spare;
  the legs of each family are ordered by strike (puts before calls at equal strike).

Legacy layout, `Discrete(31)` (`layout="legacy"`): 0 hold; 1-10 buy a call at offsets -5..4
(95%..104% of spot on the default 1% step); 11-20 buy a put at offsets -5..4; 21-30 close slot
i = 0..9 (no legs, `close_slot` = i). Legacy opens use the same 28-day expiry (index 3).

Table conventions:
- Inactive legs are all zeros (kind 0, side 0, offset 0, expiry 0, ratio 0), so a sum over legs of
  side * ratio * anything needs no mask.
- `ratio` is the number of contracts of the leg per unit of the position (the butterfly's body
  is ratio 2).
- Family ids are the same in both layouts (`FAMILIES`; the legacy closes are family "close").
- `is_credit`: the position receives net premium when opened, for every arbitrage-free price
  (short covered call, short cash-secured put, the iron condor whose short strikes are nearer ATM
  than its long ones). Every other open is a debit: the long single legs, the straddle and strangle,
  the spreads that buy the nearer strike, and the long butterfly (convexity of prices in strike).

Only the 15-strike, 5-expiry grid (the `ChainConfig` defaults) is supported: the action count 91
is tied to it (one single-leg action per strike). `action_table(n_strikes=..., n_expiries=...)`
raises ValueError for any other grid instead of rescaling offsets silently; to widen or narrow the
strikes, change `ChainConfig.strike_step`, not the number of strikes.

`structural_mask` is the part of the action mask the table decides from a few state summaries
(slots, shares, cash, which slots are open); the env adds whatever else it knows (untradable rows,
Greeks limits).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

N_ACTIONS = 91
LEGACY_N_ACTIONS = 31
MAX_LEGS = 4
N_STRIKES = 15
N_EXPIRIES = 5
ATM_INDEX = 7                  # index of the at-the-money strike among the 15
SINGLE_LEG_EXPIRY = 3          # expiry index of every single-leg action (28 days on the default grid)
EXPIRY_STEP_DAYS = 7           # only used for the labels
LAYOUTS = ("full", "legacy")

CALL = 0
PUT = 1
LONG = 1
SHORT = -1

# Family ids (index into FAMILIES); the same ids in both layouts.
FAMILIES = (
    "hold",
    "buy_call",
    "buy_put",
    "covered_call",
    "cash_secured_put",
    "bull_call_spread",
    "bear_put_spread",
    "long_straddle",
    "long_strangle",
    "iron_condor",
    "butterfly",
    "close",
)
HOLD, BUY_CALL, BUY_PUT, COVERED_CALL, CASH_SECURED_PUT, BULL_CALL_SPREAD, BEAR_PUT_SPREAD, \
    LONG_STRADDLE, LONG_STRANGLE, IRON_CONDOR, BUTTERFLY, CLOSE = range(len(FAMILIES))

_FAMILY_TEXT = {
    HOLD: "hold", BUY_CALL: "buy call", BUY_PUT: "buy put", COVERED_CALL: "sell covered call",
    CASH_SECURED_PUT: "sell cash-secured put", BULL_CALL_SPREAD: "bull call spread",
    BEAR_PUT_SPREAD: "bear put spread", LONG_STRADDLE: "long straddle",
    LONG_STRANGLE: "long strangle", IRON_CONDOR: "iron condor", BUTTERFLY: "butterfly",
    CLOSE: "close",
}

# Legs of the multi-leg families: (kind, side, strike_offset, ratio), ordered by strike.
MULTI_LEG_FAMILIES = {
    BULL_CALL_SPREAD: ((CALL, LONG, 0, 1), (CALL, SHORT, 2, 1)),
    BEAR_PUT_SPREAD: ((PUT, SHORT, -2, 1), (PUT, LONG, 0, 1)),
    LONG_STRADDLE: ((PUT, LONG, 0, 1), (CALL, LONG, 0, 1)),
    LONG_STRANGLE: ((PUT, LONG, -2, 1), (CALL, LONG, 2, 1)),
    IRON_CONDOR: ((PUT, LONG, -4, 1), (PUT, SHORT, -2, 1), (CALL, SHORT, 2, 1), (CALL, LONG, 4, 1)),
    BUTTERFLY: ((CALL, LONG, -2, 1), (CALL, SHORT, 0, 2), (CALL, LONG, 2, 1)),
}
# Single-leg families: (kind, side).
SINGLE_LEG_FAMILIES = {
    BUY_CALL: (CALL, LONG), BUY_PUT: (PUT, LONG),
    COVERED_CALL: (CALL, SHORT), CASH_SECURED_PUT: (PUT, SHORT),
}
CREDIT_FAMILIES = (COVERED_CALL, CASH_SECURED_PUT, IRON_CONDOR)
FULL_OFFSETS = tuple(range(-ATM_INDEX, ATM_INDEX + 1))        # -7..7
LEGACY_OFFSETS = tuple(range(-5, 5))                           # -5..4
LEGACY_CLOSE_SLOTS = 10


class NumpyTable(NamedTuple):
    """The host (numpy) form of one layout's table; `ActionTable` holds the same arrays as jnp."""

    active: np.ndarray          # bool [A, MAX_LEGS]
    kind: np.ndarray            # int32 [A, MAX_LEGS]   0 call, 1 put
    side: np.ndarray            # int32 [A, MAX_LEGS]   +1 long, -1 short, 0 inactive
    strike_offset: np.ndarray   # int32 [A, MAX_LEGS]   -7..7, strike index - ATM_INDEX
    expiry_index: np.ndarray    # int32 [A, MAX_LEGS]   0..4
    ratio: np.ndarray           # int32 [A, MAX_LEGS]   contracts per unit, 0 inactive
    family: np.ndarray          # int32 [A]
    variation: np.ndarray       # int32 [A]  1..5 for multi-leg families, 0 otherwise
    is_open: np.ndarray         # bool [A]
    close_slot: np.ndarray      # int32 [A]  slot closed by the action, -1 if not a close
    needs_shares: np.ndarray    # bool [A]   covered call
    cash_secured: np.ndarray    # bool [A]   cash-secured put
    is_credit: np.ndarray       # bool [A]
    n_legs: np.ndarray          # int32 [A]
    labels: tuple[str, ...]


def _offset_text(offset: int) -> str:
    return "ATM" if offset == 0 else f"K{offset:+d}"


def _days(expiry_index: int) -> str:
    return f"{EXPIRY_STEP_DAYS * (expiry_index + 1)}d"


def _build(layout: str) -> NumpyTable:
    rows: list[tuple[int, int, int, tuple, str]] = []   # (family, variation, close_slot, legs, label)
    rows.append((HOLD, 0, -1, (), "hold"))
    if layout == "full":
        for fam, (kind, side) in SINGLE_LEG_FAMILIES.items():
            for off in FULL_OFFSETS:
                rows.append((fam, 0, -1, ((kind, side, off, SINGLE_LEG_EXPIRY, 1),),
                             f"{_FAMILY_TEXT[fam]} {_offset_text(off)} {_days(SINGLE_LEG_EXPIRY)}"))
        for fam, legs in MULTI_LEG_FAMILIES.items():
            for k in range(1, N_EXPIRIES + 1):
                rows.append((fam, k, -1, tuple((kd, sd, off, k - 1, r) for kd, sd, off, r in legs),
                             f"{_FAMILY_TEXT[fam]} {_days(k - 1)}"))
        assert len(rows) == N_ACTIONS, len(rows)
    elif layout == "legacy":
        for fam in (BUY_CALL, BUY_PUT):
            kind, side = SINGLE_LEG_FAMILIES[fam]
            for off in LEGACY_OFFSETS:
                rows.append((fam, 0, -1, ((kind, side, off, SINGLE_LEG_EXPIRY, 1),),
                             f"{_FAMILY_TEXT[fam]} {_offset_text(off)} {_days(SINGLE_LEG_EXPIRY)}"))
        for slot in range(LEGACY_CLOSE_SLOTS):
            rows.append((CLOSE, 0, slot, (), f"close slot {slot}"))
        assert len(rows) == LEGACY_N_ACTIONS, len(rows)
    else:
        raise ValueError(f"unknown action layout {layout!r}; known: {LAYOUTS}")

    n = len(rows)
    leg_fields = {name: np.zeros((n, MAX_LEGS), np.int32)
                  for name in ("kind", "side", "strike_offset", "expiry_index", "ratio")}
    active = np.zeros((n, MAX_LEGS), bool)
    family = np.array([r[0] for r in rows], np.int32)
    for a, (_, _, _, legs, _) in enumerate(rows):
        for j, (kind, side, off, exp, ratio) in enumerate(legs):
            active[a, j] = True
            leg_fields["kind"][a, j] = kind
            leg_fields["side"][a, j] = side
            leg_fields["strike_offset"][a, j] = off
            leg_fields["expiry_index"][a, j] = exp
            leg_fields["ratio"][a, j] = ratio
    table = NumpyTable(
        active=active, **leg_fields, family=family,
        variation=np.array([r[1] for r in rows], np.int32),
        is_open=active.any(axis=1),
        close_slot=np.array([r[2] for r in rows], np.int32),
        needs_shares=family == COVERED_CALL,
        cash_secured=family == CASH_SECURED_PUT,
        is_credit=np.isin(family, CREDIT_FAMILIES),
        n_legs=active.sum(axis=1).astype(np.int32),
        labels=tuple(r[4] for r in rows),
    )
    for arr in table[:-1]:
        arr.setflags(write=False)
    return table


_NUMPY_TABLES = {layout: _build(layout) for layout in LAYOUTS}


def _check(layout: str, n_strikes: int = N_STRIKES, n_expiries: int = N_EXPIRIES) -> str:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown action layout {layout!r}; known: {LAYOUTS}")
    if (n_strikes, n_expiries) != (N_STRIKES, N_EXPIRIES):
        raise ValueError(
            f"the options action table is defined on the {N_STRIKES}-strike, {N_EXPIRIES}-expiry grid "
            f"(the ChainConfig defaults); got n_strikes={n_strikes}, n_expiries={n_expiries}. "
            "Offsets are not rescaled: keep n_strikes=15 and n_expiries=5 and change "
            "ChainConfig.strike_step / expiry_step_days to move the strikes and expiries.")
    return layout


def numpy_table(layout: str = "full") -> NumpyTable:
    """The read-only numpy table of `layout` (built at import)."""
    return _NUMPY_TABLES[_check(layout)]


def n_actions(layout: str = "full") -> int:
    return len(numpy_table(layout).labels)


class Legs(NamedTuple):
    """The legs of the gathered action(s): each field [..., MAX_LEGS]."""

    active: jax.Array
    kind: jax.Array
    side: jax.Array
    strike_offset: jax.Array
    expiry_index: jax.Array
    ratio: jax.Array

    @property
    def strike_index(self) -> jax.Array:
        """Index into the day's strikes (0..14); 7 (ATM) on inactive legs."""
        return self.strike_offset + ATM_INDEX


@struct.dataclass
class ActionTable:
    """One layout's action table as jnp arrays (a pytree; `layout` etc. are static metadata).

    Per leg [A, MAX_LEGS]: active, kind (0 call, 1 put), side (+1 long, -1 short, 0 inactive),
    strike_offset (-7..7 = strike index - ATM_INDEX), expiry_index (0..4), ratio (contracts per
    unit, 0 inactive). Per action [A]: family (index into FAMILIES), variation (1..5 for multi-leg
    families, else 0), is_open, close_slot (-1 if not a close), needs_shares (covered call),
    cash_secured (cash-secured put), is_credit, n_legs.
    """

    active: jax.Array
    kind: jax.Array
    side: jax.Array
    strike_offset: jax.Array
    expiry_index: jax.Array
    ratio: jax.Array
    family: jax.Array
    variation: jax.Array
    is_open: jax.Array
    close_slot: jax.Array
    needs_shares: jax.Array
    cash_secured: jax.Array
    is_credit: jax.Array
    n_legs: jax.Array
    layout: str = struct.field(pytree_node=False, default="full")

    @property
    def n_actions(self) -> int:
        return self.family.shape[0]

    @property
    def is_close(self) -> jax.Array:
        """bool [A]: the action closes a slot (legacy layout only)."""
        return self.close_slot >= 0

    @property
    def needs_cash_secured(self) -> jax.Array:
        """Alias of `cash_secured` (the name in the options contract)."""
        return self.cash_secured

    @property
    def shares_needed(self) -> jax.Array:
        """int32 [A]: contracts' worth of (100-share) lots of uncovered shares an action needs: the
        short call ratio of a covered call, 0 for every other action."""
        short_calls = (self.side == SHORT) & (self.kind == CALL)
        return jnp.where(self.needs_shares, jnp.sum(jnp.where(short_calls, self.ratio, 0), axis=-1), 0)

    def legs(self, action: jax.Array) -> Legs:
        """Gather the legs of `action` (int, any shape) -> `Legs` with fields [..., MAX_LEGS]."""
        action = jnp.asarray(action, jnp.int32)
        take = lambda x: jnp.take(x, action, axis=0, mode="clip")
        return Legs(take(self.active), take(self.kind), take(self.side), take(self.strike_offset),
                    take(self.expiry_index), take(self.ratio))


def action_table(layout: str = "full", n_strikes: int = N_STRIKES, n_expiries: int = N_EXPIRIES
                 ) -> ActionTable:
    """The `ActionTable` of `layout` ("full": 91 actions, "legacy": 31). Only the 15-strike,
    5-expiry grid is supported (ValueError otherwise; see the module docstring)."""
    t = _NUMPY_TABLES[_check(layout, n_strikes, n_expiries)]
    return ActionTable(**{name: jnp.asarray(getattr(t, name)) for name in NumpyTable._fields
                          if name != "labels"}, layout=layout)


def action_label(a: int, layout: str = "full") -> str:
    """Human label of action `a` ("buy call K+3 28d", "iron condor 21d", "close slot 4", ...)."""
    labels = numpy_table(layout).labels
    a = int(a)
    if not 0 <= a < len(labels):
        raise IndexError(f"action {a} out of range for the {layout} layout ({len(labels)} actions)")
    return labels[a]


def action_labels(layout: str = "full") -> tuple[str, ...]:
    return numpy_table(layout).labels


def _legs_text(t: NumpyTable, a: int) -> str:
    parts = []
    for j in range(MAX_LEGS):
        if t.active[a, j]:
            sign = "+" if t.side[a, j] > 0 else "-"
            parts.append(f"{sign}{t.ratio[a, j]} {'C' if t.kind[a, j] == CALL else 'P'} "
                         f"{_offset_text(int(t.strike_offset[a, j]))} {_days(int(t.expiry_index[a, j]))}")
    return ", ".join(parts) if parts else "-"


def action_table_markdown(layout: str = "full") -> str:
    """A markdown table of every action of `layout`: id, label, family, legs, flags."""
    t = numpy_table(layout)
    lines = [
        f"Options actions, layout `{layout}` (Discrete({len(t.labels)})). Legs: +n long / -n short, "
        "n contracts per unit, C call / P put, strike in strike steps from ATM (`K+2` = two steps "
        f"above), expiry in calendar days on the default {EXPIRY_STEP_DAYS}-day grid.",
        "",
        "| action | label | family | legs | flags |",
        "|---:|---|---|---|---|",
    ]
    for a, label in enumerate(t.labels):
        flags = []
        if t.is_open[a]:
            flags.append("credit" if t.is_credit[a] else "debit")
        if t.needs_shares[a]:
            flags.append("needs 100 shares per contract")
        if t.cash_secured[a]:
            flags.append("cash-secured (strike x 100 per contract)")
        if t.close_slot[a] >= 0:
            flags.append(f"closes slot {t.close_slot[a]}")
        lines.append(f"| {a} | {label} | {FAMILIES[t.family[a]]} | {_legs_text(t, a)} | "
                     f"{', '.join(flags) or '-'} |")
    return "\n".join(lines) + "\n"


def structural_mask(table: ActionTable, n_open_slots, max_positions, shares_free_contracts, cash_free,
                    csp_collateral, open_slots_mask=None, *, per_leg_slots: bool = False) -> jax.Array:
    """bool [A]: True where the action is allowed by what the table decides. Pure jnp, jit/vmap-able.

    Args (scalars may be traced; vmap over a batch of states with `in_axes=(None, 0, ...)`):
      n_open_slots: int, slots in use now; None = `open_slots_mask.sum()`.
      max_positions: int, the slot limit (at most `open_slots_mask`'s length when both are given).
      shares_free_contracts: contracts' worth (100-share lots) of shares not yet covering a call.
      cash_free: cash not already pledged as collateral.
      csp_collateral: float [A] (or scalar) collateral the action would pledge (strike x 100 x
        contracts for a cash-secured put; ignored elsewhere). NaN (an untradable strike) masks it.
      open_slots_mask: bool [P], which slots hold a position (the legacy closes). None = a compact
        ledger: slots 0..n_open_slots-1 are the open ones.
      per_leg_slots (static): an open takes n_legs slots instead of one (a ledger of single legs).

    Rules: hold is always allowed; an open needs free slots (n_open_slots + need <= max_positions);
    a covered call needs shares_free_contracts >= its short call contracts; a cash-secured put needs
    cash_free >= its collateral; close slot i needs i < max_positions, i < P and slot i open.
    """
    n_open = None if n_open_slots is None else jnp.asarray(n_open_slots, jnp.int32)
    if open_slots_mask is not None:
        open_slots_mask = jnp.asarray(open_slots_mask, bool)
        if n_open is None:
            n_open = jnp.sum(open_slots_mask, dtype=jnp.int32)
    if n_open is None:
        raise ValueError("structural_mask needs n_open_slots or open_slots_mask")
    max_positions = jnp.asarray(max_positions, jnp.int32)
    need = table.n_legs if per_leg_slots else jnp.ones_like(table.n_legs)
    slots_ok = n_open + need <= max_positions
    shares_ok = ~table.needs_shares | (jnp.asarray(shares_free_contracts) >= table.shares_needed)
    cash_ok = ~table.cash_secured | (jnp.asarray(cash_free) >= jnp.asarray(csp_collateral))
    open_ok = ~table.is_open | (slots_ok & shares_ok & cash_ok)

    slot = table.close_slot
    if open_slots_mask is None:
        occupied = slot < n_open
    elif open_slots_mask.shape[-1] == 0:
        occupied = jnp.zeros_like(table.is_close)
    else:
        n_slots = open_slots_mask.shape[-1]
        occupied = (slot < n_slots) & jnp.take(open_slots_mask, jnp.clip(slot, 0, n_slots - 1), axis=-1)
    close_ok = ~table.is_close | (occupied & (slot < max_positions))
    return (open_ok & close_ok) | (table.family == HOLD)
