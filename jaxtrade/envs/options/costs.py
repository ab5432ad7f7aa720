"""Per-contract fees and size-based slippage for listed US equity options.

Host side (numpy/pandas), once per dataset: every trade date's fee rates from a dated, sourced schedule.

    rates = option_fee_rates(md.dates, profile="retail")     # float64 [T, F], columns OPTION_FEE_COLUMNS

Device side (pure jnp, elementwise over legs, float32-safe, jit/vmap-able), in the env step:

    total, by_kind = contract_fees(qty, premium, is_sell, rates[t])   # by_kind [..., 6]: FEE_KINDS
    cost = slippage_fraction(qty, option_volume) * premium * MULTIPLIER * qty

Fees of one order (leg) of `qty` contracts at `premium` per share (contract = MULTIPLIER = 100 shares)
-------------------------------------------------------------------------------------------------------
    commission  commission_per_contract * qty                       both sides (profile constant)
    occ         OCC clearing: occ_per_contract * qty, or the flat occ_cap_per_trade when the trade
                has more than occ_cap_above_contracts contracts (retail: $0.02, $55 above 2,750)
    orf         options regulatory fee: orf_per_contract * qty      both sides
    taf         FINRA TAF: taf_per_contract_sold * qty              sells only
    sec         SEC Section 31: sec_rate * premium * 100 * qty      sells only (premium value sold)
    cat         CAT: cat_per_equivalent_share * 100 * qty           both sides (a listed option contract
                counts as its multiplier, 100, executed equivalent shares: CAT NMS Plan sec. 11.3)
`round_up_cents=True` rounds each fee kind of the order up to the cent, as brokers bill. Selling one
contract at $2.00 with the published 2024 rate set (`PUBLISHED_RATES_2024`, mode="flat") costs
0.65 + 0.02 + 0.02685 + 0.00279 + 27.80e-6 * 200 + 0.000046 * 100 = $0.7098, or $0.73 rounded.

Modes (`option_fee_rates(..., mode=)`)
--------------------------------------
* "schedule" (default): the dated rows below. SEC Section 31 and the FINRA TAF per option contract sold
  come from `jaxtrade.data.fees` (columns 0 and 3 of `regulatory_fee_rates`), not restated here. The
  options schedule covers OPTIONS_COVERAGE_START .. OPTIONS_SCHEDULE_VERIFIED_THROUGH; every other date
  (and a missing one) raises `OptionFeeScheduleError` naming the date.
* "flat": one constant row on every date: `PUBLISHED_RATES_2024` with the profile's commission, updated
  by `flat_rates` (a mapping of OPTION_FEE_COLUMNS names to values).
* "none": no fees and no commission (every rate 0).

Profiles: "retail" ($0.65 per contract, OCC passed through at $0.02 with the $55 cap), "alpaca" (the same
fees, $0 commission), "occ_direct" ($0.65 per contract, OCC's own fee schedule: $0.025 per contract
without a cap from 2025-02-14). The commission is a profile constant, not a dated rate.

How to read the schedule: the same conventions as `jaxtrade.data.fees` -- each row holds from its
`start` (inclusive) to the next row's start, the last until OPTIONS_SCHEDULE_VERIFIED_THROUGH, and every
`source` opens with its grade (PRIMARY, DERIVED, SECONDARY, BOUND, UNSOURCED; UNSOURCED rows are NaN and
dates in them raise). Rows before the coverage start are recorded for the table and never used.
`options_fee_table()` renders it all as markdown.

Slippage (`slippage_fraction`): adverse fill as a fraction of the premium, by order size relative to the
option's volume (`SLIPPAGE_TIERS`): < 1%: 0.1%; 1-5%: 0.5%; 5-10%: 1%; 10-20%: 2%; from 20% linear from
2% to 10% at 100% of the volume; capped at 10% (also where the volume is 0, negative or NaN). 0 where
nothing is traded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxtrade.data import fees
from jaxtrade.data.fees import GRADES, FeeScheduleError, source_grade
from jaxtrade.envs.options.pricing import MULTIPLIER

NAN = math.nan
INF = math.inf

OPTION_FEE_COLUMNS = (
    "commission_per_contract",    # broker commission, $ per contract, both sides
    "occ_per_contract",           # OCC clearing fee, $ per contract, both sides
    "occ_cap_per_trade",          # flat OCC fee of a trade above the threshold, $ (inf: no cap)
    "occ_cap_above_contracts",    # a trade of more contracts than this pays the flat fee (inf: never)
    "orf_per_contract",           # options regulatory fee, $ per contract, both sides
    "taf_per_contract_sold",      # FINRA TAF, $ per option contract sold (data.fees column 3)
    "sec_rate",                   # SEC Section 31, $ per $ of premium sold (data.fees column 0)
    "cat_per_equivalent_share",   # CAT fee, $ per executed equivalent share (100 per contract), both sides
)
FEE_KINDS = ("commission", "occ", "orf", "taf", "sec", "cat")
OPTION_FEE_MODES = ("schedule", "flat", "none")
_COL = {name: i for i, name in enumerate(OPTION_FEE_COLUMNS)}


@dataclasses.dataclass(frozen=True)
class OccRate:
    """OCC clearing fee effective from `start` (inclusive) until the next row."""

    start: str                     # ISO date 'YYYY-MM-DD'
    per_contract: float            # $ per contract
    cap_per_trade: float           # flat $ per trade above `cap_above_contracts` (inf: no cap)
    cap_above_contracts: float     # contracts (inf: no cap)
    source: str


@dataclasses.dataclass(frozen=True)
class UnitRate:
    """A per-unit fee (ORF per contract, CAT per equivalent share) from `start` until the next row."""

    start: str
    rate: float                    # NaN: unsourced interval
    source: str


@dataclasses.dataclass(frozen=True)
class FeeProfile:
    name: str
    commission_per_contract: float
    occ: tuple[OccRate, ...]
    description: str


_OCC_PRESS_2021 = ("https://www.theocc.com/newsroom/press-releases/2021/"
                   "04-19-occ-announces-clearing-fee-reduction-to-two")
_ALPACA_DOCS = "https://docs.alpaca.markets/docs/regulatory-fees"

OCC_CLEARING_FEES: tuple[OccRate, ...] = (
    OccRate("2020-01-01", 0.055, 55.00, 999,
            "SECONDARY (date): OCC Schedule of Fees headed 'January 2020' ($0.055 per contract for trades "
            "of 0-999 contracts, $55.00 per trade above 999), https://www.theocc.com/membership/"
            "schedule-of-fees/; the date $0.055 took effect was not read, the row starts at the "
            "schedule's date."),
    OccRate("2020-09-01", 0.045, 55.00, 1222,
            "PRIMARY: OCC press release 2021-04-19 ('a previous fee reduction from five and a half cents "
            "($0.055) per contract to four and a half cents ($0.045) per contract, which went into effect "
            f"September 1, 2020'), {_OCC_PRESS_2021}; the $55.00 flat fee above 1,222 contracts from "
            "OCC's Schedule of Fees page of that period (undated), "
            "https://www.theocc.com/Company-Information/Schedule-of-Fees"),
    OccRate("2021-06-01", 0.02, 55.00, 2750,
            "PRIMARY: OCC press release 2021-04-19 (clearing fee reduced from $0.045 to $0.02 per "
            f"contract 'effective June 1, 2021, subject to regulatory review'), {_OCC_PRESS_2021}; OCC "
            "Schedule of Fees ('Trades with contracts of 0-2,750 $0.02/contract', 'greater than 2,750 "
            "$55.00/trade'), https://prd-web.theocc.com/company-information/schedule-of-fees"),
    OccRate("2025-02-14", 0.025, INF, INF,
            "SECONDARY: OCC fee-schedule filing noticed at 90 FR 10544 (effective February 14, 2025 the "
            "per-contract clearing fee rises from $0.02 to $0.025 and the $55.00 flat fee for trades of "
            "2,751 or more contracts is removed), read through the summary at "
            "https://usregs.ai/search?money_only=True&q=keywords%3A%22schedule+of+fees%22; given in the "
            "issue (profile occ_direct)."),
)

# What a retail broker passes through: OCC's schedule until 2025-02-14, then still $0.02 with the cap.
OCC_RETAIL_PASS_THROUGH: tuple[OccRate, ...] = OCC_CLEARING_FEES[:-1] + (
    OccRate("2025-02-14", 0.02, 55.00, 2750,
            "SECONDARY: the retail pass-through stays at $0.02 per contract with the $55 cap per trade "
            "above 2,750 contracts, as Alpaca's regulatory-fee docs list it ('OCC Clearing Fee: Contract "
            f"Rate 0.02, Trade Cap 55', 'buys and sells up to 2750 contracts'), {_ALPACA_DOCS}; given in "
            "the issue. Not verified after OCC's own change: OCC charges $0.025 without a cap from this "
            "date (profile occ_direct)."),
)

ORF_RATES: tuple[UnitRate, ...] = (
    UnitRate("2010-02-01", NAN,
             "UNSOURCED: the ORF is the sum of every options exchange's fee and changes with each "
             "exchange's filing (most on February 1 and August 1, the SIFMA convention described in the "
             "'Options Regulatory Fee - ORF' guide of 2016-02-01, https://docplayer.net/amp/"
             "15437489-Options-regulatory-fee-orf-a-guide-to-exchange-collection-scenarios-and-rates.html)."
             " Dated aggregates found: $0.014 from 2010-02-01 (Interactive Brokers notice, four exchanges,"
             " quoted at https://www.elitetrader.com/et/threads/u-s-options-exchange-regulatory-fee-sucks."
             "188256/); undated $0.0378 and $0.0379 (IBKR, 2017-2019 exchange lists, "
             "https://ibkr.info/article/1184). Too sparse to date a schedule: NaN."),
    UnitRate("2024-05-22", 0.02685,
             "SECONDARY (interval assumed): $0.02685 per contract, the aggregate ORF in Alpaca's regulatory-"
             f"fee docs ('Options Regulatory Fee: Contract Rate 0.02685', buys and sells), {_ALPACA_DOCS}, "
             "an undated page that lists SEC $27.80 per $1M, so in force at some time in "
             "2024-05-22..2025-05-13; given in the issue. The row holds it from the SEC $27.80 start "
             "through OPTIONS_SCHEDULE_VERIFIED_THROUGH. The true aggregate varies by broker and half-year "
             "by a few tenths of a cent: IBKR charged $0.02815 as of 2025-03-03 "
             "(https://ibkrguides.com/kb/options-regulatory-fee-orf.htm), Tradier quoted $0.02135 "
             "(undated)."),
)

_CAT_FAQ = "https://catnmsplan.com/faq/v6"
CAT_RATES: tuple[UnitRate, ...] = (
    UnitRate("2012-07-11", 0.0,
             "SECONDARY: no CAT fee was charged to Industry Members (broker-dealers) before CAT Fee 2024-1 "
             "(first invoice October 2024, for September 2024 transactions; FINRA Rule 6897(a)(1)(C)). "
             "The SEC adopted Rule 613 (the CAT) in July 2012; the 2017 Industry Member fee filings were "
             "suspended by the SEC on 2017-06-30 (Corporate & Financial Weekly Digest, 2017-11, "
             "https://www.corporatefinancialweeklydigest.com/2017/11/articles/broker-dealer-1/"
             "sec-approves-a-longer-period-to-review-fees-for-the-consolidated-audit-trail/), and "
             "Historical CAT Assessment 1 at $0.000015 from March 2024 was suspended too (SIFMA letter "
             "2024-03-05, http://www.sifma.org/Thought-Leader-Library/2017/Consolidated-Audit-Trail/)."),
    UnitRate("2024-09-01", 0.000035,
             "PRIMARY: CAT Fee 2024-1, $0.000035 per executed equivalent share on each transaction in "
             "Eligible Securities, charged to the CAT Executing Broker of the buyer and of the seller, "
             "first invoice October 2024 for September 2024 transactions (FINRA Rule 6897(a)(1)(C), read "
             f"through a mirror of the rulebook page; CAT NMS Plan FAQ V6, {_CAT_FAQ}). A listed option "
             "contract counts as its multiplier (100) executed equivalent shares (CAT NMS Plan sec. 11.3, "
             "https://www.lawinsider.com/clause/executed-equivalent-shares)."),
    UnitRate("2024-10-01", 0.000048,
             "PRIMARY (start and rates): CAT Fee 2024-1 ($0.000035) plus Historical CAT Assessment 1 "
             f"($0.000013 per executed equivalent share from October 2024 transactions), {_CAT_FAQ}. End "
             "not established: CAT Fee 2024-1 stays in effect until a subsequent CAT fee takes effect "
             "(Rule 6897(a)(1)(C)(iii)); that date and rate were not found. Alpaca's pages quote a total of "
             f"$0.000046 ({_ALPACA_DOCS}, the rate of PUBLISHED_RATES_2024) and $0.000053 "
             "(https://alpaca.markets/support/regulatory-fees), both alongside SEC $27.80, at undated "
             "times before 2025-05-14; this row keeps the primary sum."),
    UnitRate("2025-07-01", 0.0000265,
             "SECONDARY: $0.0000265 per executed equivalent share = CAT Fee 2025-2 $0.000009 + Historical "
             "CAT Assessment 1 $0.000013 + Prospective CAT Cost Recovery Fee 2025-2 $0.0000045, Alpaca's "
             "breakdown (https://alpaca.markets/support/regulatory-fees, alongside SEC $0.00); the fees "
             "for the period July 1, 2025 through December 31, 2025 (SR-CBOE-2025-044, 90 FR 30370, "
             "https://www.govinfo.gov/content/pkg/FR-2025-07-09/html/2025-12711.htm). The 11th Circuit "
             "held the CAT funding model unlawful in July 2025; fees were still collected in August 2025 "
             "(SIFMA letter 2025-08-11)."),
)

# Last date every options row is known to hold: from 2025-09-01 MIAX Options and MIAX Pearl cut their ORF
# (https://mondovisione.com/media-and-resources/news/miax-options-and-miax-pearl-options-options-
# regulatory-fee-reduction-between-se-2025731), to an aggregate not found. Later dates raise.
OPTIONS_SCHEDULE_VERIFIED_THROUGH = "2025-08-31"

_COMMISSION_SOURCE = ("assumption given in the issue: $0.65 per contract, the usual published retail "
                      "options rate; not dated")
PROFILES: dict[str, FeeProfile] = {
    "retail": FeeProfile("retail", 0.65, OCC_RETAIL_PASS_THROUGH,
                         "$0.65 per contract commission (" + _COMMISSION_SOURCE + "); OCC passed through at "
                         "$0.02 with the $55 cap per trade above 2,750 contracts"),
    "alpaca": FeeProfile("alpaca", 0.0, OCC_RETAIL_PASS_THROUGH,
                         "$0 commission (given in the issue); the retail fees, as Alpaca passes them "
                         "through (" + _ALPACA_DOCS + ")"),
    "occ_direct": FeeProfile("occ_direct", 0.65, OCC_CLEARING_FEES,
                             "$0.65 per contract commission; OCC's own clearing fee schedule ($0.025 per "
                             "contract without a cap from 2025-02-14)"),
}

# The rate set the golden example uses (Alpaca's regulatory-fee docs, an undated page listing SEC
# $27.80 per $1M, i.e. 2024-05-22..2025-05-13); the default row of mode="flat" (commission: the profile's).
PUBLISHED_RATES_2024: dict[str, float] = {
    "occ_per_contract": 0.02,
    "occ_cap_per_trade": 55.0,
    "occ_cap_above_contracts": 2750.0,
    "orf_per_contract": 0.02685,
    "taf_per_contract_sold": 0.00279,
    "sec_rate": 27.80e-6,
    "cat_per_equivalent_share": 0.000046,
}

# Slippage: (order size / option volume upper bound, fraction of the premium) tiers, then linear.
SLIPPAGE_TIERS = ((0.01, 0.001), (0.05, 0.005), (0.10, 0.01), (0.20, 0.02))
SLIPPAGE_LINEAR_END = (1.0, 0.10)     # from (0.20, 0.02) linearly to 10% at 100% of the volume
SLIPPAGE_CAP = 0.10


class OptionFeeScheduleError(FeeScheduleError):
    """A date the options fee schedule does not cover (or covers only with an unsourced row)."""

    def __init__(self, date: str, reason: str):
        self.date, self.reason = date, reason
        self.covered = (OPTIONS_COVERAGE_START, OPTIONS_SCHEDULE_VERIFIED_THROUGH)
        ValueError.__init__(
            self,
            f"options fee schedule has no sourced rate for {date}: {reason}. The schedule covers "
            f"{OPTIONS_COVERAGE_START}..{OPTIONS_SCHEDULE_VERIFIED_THROUGH} (see "
            "jaxtrade.envs.options.costs.options_fee_table()). To run anyway use mode=\"flat\" (constant "
            "rates: PUBLISHED_RATES_2024 and the profile's commission, overridden by flat_rates={column: "
            "value}, columns OPTION_FEE_COLUMNS), or mode=\"none\" to charge no fees or commission.")


def _day(iso: str) -> np.datetime64:
    return np.datetime64(iso, "D")


def _values(row) -> tuple[float, ...]:
    return dataclasses.astuple(row)[1:-1]


_TABLES: dict[str, tuple] = {"OCC clearing fee": OCC_CLEARING_FEES,
                             "OCC retail pass-through": OCC_RETAIL_PASS_THROUGH,
                             "options regulatory fee (ORF)": ORF_RATES, "CAT fee": CAT_RATES}


def _check_schedules() -> None:
    """Import-time guard: ISO starts, strictly increasing; graded sources; NaN exactly in UNSOURCED rows."""
    for name, rows in _TABLES.items():
        starts = [_day(r.start) for r in rows]
        if any(str(d) != r.start for r, d in zip(rows, starts, strict=True)):
            raise RuntimeError(f"{name}: a start is not an ISO date")
        if any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
            raise RuntimeError(f"{name}: starts must be strictly increasing")
        for r in rows:
            values = _values(r)
            nan = [math.isnan(v) for v in values]
            unsourced = source_grade(r.source) == "UNSOURCED"
            if not (all(nan) if unsourced else not any(nan)):
                raise RuntimeError(f"{name} {r.start}: UNSOURCED rows carry NaN rates, sourced rows do not")
            if any(v < 0 for v in values if not math.isnan(v)):
                raise RuntimeError(f"{name} {r.start}: negative rate")
    if OPTIONS_SCHEDULE_VERIFIED_THROUGH > fees.SCHEDULE_VERIFIED_THROUGH:
        raise RuntimeError("the options schedule runs past the SEC/TAF schedule (jaxtrade.data.fees)")


def _sourced_from(rows) -> str:
    """First start after which every row of `rows` is sourced."""
    last_nan = [i for i, r in enumerate(rows) if any(math.isnan(v) for v in _values(r))]
    return rows[last_nan[-1] + 1].start if last_nan else rows[0].start


_check_schedules()

OPTIONS_COVERAGE_START = max([fees.COVERAGE_START, _sourced_from(ORF_RATES), _sourced_from(CAT_RATES)]
                             + [_sourced_from(p.occ) for p in PROFILES.values()])
_FIRST, _LAST = _day(OPTIONS_COVERAGE_START), _day(OPTIONS_SCHEDULE_VERIFIED_THROUGH)


def _lookup(rows, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values [T, k] of the row in force on each day (NaN before the first row or for NaT), row index [T]."""
    starts = np.array([_day(r.start) for r in rows])
    table = np.array([_values(r) for r in rows], dtype=np.float64)
    idx = np.searchsorted(starts, days, side="right") - 1
    ok = (idx >= 0) & ~np.isnat(days)
    out = np.full((len(days), table.shape[1]), np.nan)
    out[ok] = table[idx[ok]]
    return out, np.where(ok, idx, -1)


def _profile(profile: str) -> FeeProfile:
    if profile not in PROFILES:
        raise ValueError(f"unknown options fee profile {profile!r}; one of {tuple(PROFILES)}")
    return PROFILES[profile]


def flat_fee_row(profile: str = "retail", flat_rates: Mapping[str, float] | None = None) -> np.ndarray:
    """float64 [F]: PUBLISHED_RATES_2024 with the profile's commission, updated by `flat_rates`."""
    values = {"commission_per_contract": _profile(profile).commission_per_contract, **PUBLISHED_RATES_2024}
    unknown = set(flat_rates or {}) - set(OPTION_FEE_COLUMNS)
    if unknown:
        raise ValueError(f"unknown flat rate names {sorted(unknown)}; columns are {OPTION_FEE_COLUMNS}")
    values.update(flat_rates or {})
    row = np.array([float(values[c]) for c in OPTION_FEE_COLUMNS], dtype=np.float64)
    if np.isnan(row).any() or (row < 0).any():
        named = dict(zip(OPTION_FEE_COLUMNS, row.tolist(), strict=True))
        raise ValueError(f"flat option fee rates must be >= 0 and not NaN: {named}")
    return row


def _reason(day: np.datetime64, profile: FeeProfile) -> str:
    if np.isnat(day):
        return "the date is missing (NaT)"
    if day > _LAST:
        return f"it is after OPTIONS_SCHEDULE_VERIFIED_THROUGH ({OPTIONS_SCHEDULE_VERIFIED_THROUGH})"
    for name, rows in (("ORF", ORF_RATES), ("CAT", CAT_RATES), (f"OCC ({profile.name})", profile.occ)):
        _, idx = _lookup(rows, np.array([day]))
        i = int(idx[0])
        if i < 0:
            return f"it is before the first {name} row ({rows[0].start})"
        if any(math.isnan(v) for v in _values(rows[i])):
            end = rows[i + 1].start if i + 1 < len(rows) else OPTIONS_SCHEDULE_VERIFIED_THROUGH
            return f"it falls in the {name} row from {rows[i].start} (until {end}) that is not sourced " \
                   f"({rows[i].source[:160]})"
    try:
        fees.regulatory_fee_rates([day])
    except FeeScheduleError as e:
        return f"SEC Section 31 / FINRA TAF (jaxtrade.data.fees): {e.reason}"
    if day < _FIRST:
        return f"it is before the options schedule's coverage start ({OPTIONS_COVERAGE_START})"
    return "no rate"


def option_fee_rates_or_nan(dates, profile: str = "retail", mode: str = "schedule",
                            flat_rates: Mapping[str, float] | None = None) -> tuple[np.ndarray, str | None]:
    """The `option_fee_rates` table with NaN rows where the schedule has no sourced rate, and the first such
    date as 'YYYY-MM-DD' ('NaT' for a missing date), or None if every date is covered."""
    if mode not in OPTION_FEE_MODES:
        raise ValueError(f"unknown options fee mode {mode!r}; one of {OPTION_FEE_MODES}")
    p = _profile(profile)
    days = fees._calendar_days(dates)
    n = len(days)
    if mode == "none":
        out = np.zeros((n, len(OPTION_FEE_COLUMNS)))
        out[:, [_COL["occ_cap_per_trade"], _COL["occ_cap_above_contracts"]]] = np.inf
        return out, None
    if mode == "flat":
        return np.tile(flat_fee_row(profile, flat_rates), (n, 1)), None
    out = np.full((n, len(OPTION_FEE_COLUMNS)), np.nan)
    out[:, _COL["commission_per_contract"]] = p.commission_per_contract
    occ, _ = _lookup(p.occ, days)
    out[:, _COL["occ_per_contract"]:_COL["occ_cap_above_contracts"] + 1] = occ
    out[:, _COL["orf_per_contract"]] = _lookup(ORF_RATES, days)[0][:, 0]
    out[:, _COL["cat_per_equivalent_share"]] = _lookup(CAT_RATES, days)[0][:, 0]
    regulatory, _ = fees.regulatory_fee_rates_or_nan(days)
    out[:, _COL["sec_rate"]] = regulatory[:, fees.FEE_COLUMNS.index("sec_rate")]
    out[:, _COL["taf_per_contract_sold"]] = regulatory[:, fees.FEE_COLUMNS.index("taf_per_option_contract")]
    outside = np.isnat(days) | (days < _FIRST) | (days > _LAST)
    bad = np.flatnonzero(outside | np.isnan(out).any(axis=1))
    out[bad] = np.nan
    first = None if len(bad) == 0 else ("NaT" if np.isnat(days[bad[0]]) else str(days[bad[0]]))
    return out, first


def option_fee_rates(dates, profile: str = "retail", mode: str = "schedule",
                     flat_rates: Mapping[str, float] | None = None) -> np.ndarray:
    """float64 [T, F] (columns OPTION_FEE_COLUMNS) for a DatetimeIndex / array-like of dates, looked up by
    each date's calendar day (as `jaxtrade.data.fees.regulatory_fee_rates`). mode "schedule" raises
    OptionFeeScheduleError naming the first date without a sourced rate; "flat" and "none" never raise."""
    out, first = option_fee_rates_or_nan(dates, profile, mode, flat_rates)
    if first is not None:
        day = np.datetime64("NaT", "D") if first == "NaT" else _day(first)
        raise OptionFeeScheduleError(first, _reason(day, _profile(profile)))
    return out


def _float_dtype(*xs):
    dt = jnp.result_type(*xs)
    return dt if jnp.issubdtype(dt, jnp.floating) else jnp.float32


def _ceil_cents(x: jax.Array) -> jax.Array:
    """Round up to the cent, tolerating float32 representation error of an exact cent amount."""
    cents = x * 100
    tol = 1e-3 + 1e-6 * jnp.abs(cents)
    return jnp.maximum(jnp.ceil(cents - tol), 0) / 100


def contract_fees(qty, premium, is_sell, rates_row, round_up_cents: bool = False
                  ) -> tuple[jax.Array, jax.Array]:
    """Fees of one order (per leg, elementwise): total [...] and by kind [..., 6] (FEE_KINDS), in $.

    qty: contracts (|qty| is used); premium: $ per share; is_sell: bool (sells pay TAF and SEC);
    rates_row: [F] (or [..., F]) one row of `option_fee_rates`. All broadcast together. `round_up_cents`
    (static Python bool) rounds each fee kind up to the cent. The OCC flat fee applies per order: a leg
    of more than `occ_cap_above_contracts` contracts pays `occ_cap_per_trade`.
    """
    r = jnp.asarray(rates_row)
    dtype = _float_dtype(qty, premium, r)
    r = r.astype(dtype)
    q = jnp.abs(jnp.asarray(qty, dtype))
    value = jnp.abs(jnp.asarray(premium, dtype)) * MULTIPLIER * q
    sold = jnp.asarray(is_sell).astype(bool)

    def col(name):
        return r[..., _COL[name]]

    zero = jnp.zeros((), dtype)
    kinds = [
        col("commission_per_contract") * q,
        jnp.where(q > col("occ_cap_above_contracts"), col("occ_cap_per_trade"), col("occ_per_contract") * q),
        col("orf_per_contract") * q,
        jnp.where(sold, col("taf_per_contract_sold") * q, zero),
        jnp.where(sold, col("sec_rate") * value, zero),
        col("cat_per_equivalent_share") * MULTIPLIER * q,
    ]
    by_kind = jnp.stack(jnp.broadcast_arrays(*kinds), axis=-1)
    if round_up_cents:
        by_kind = _ceil_cents(by_kind)
    return by_kind.sum(axis=-1), by_kind


def slippage_fraction(qty, option_volume) -> jax.Array:
    """Adverse slippage as a fraction of the premium [...], elementwise, by order size / option volume.

    ratio = |qty| / volume: < 1%: 0.001; [1%, 5%): 0.005; [5%, 10%): 0.01; [10%, 20%): 0.02; >= 20%:
    linear 0.02 + (ratio - 0.2) * 0.08 / 0.8 (10% at 100% of the volume), capped at SLIPPAGE_CAP. A volume
    of 0, negative or NaN counts as no liquidity (the cap). 0 where qty == 0.
    """
    dtype = _float_dtype(qty, option_volume)
    q = jnp.abs(jnp.asarray(qty, dtype))
    v = jnp.asarray(option_volume, dtype)
    ok = jnp.isfinite(v) & (v > 0)
    ratio = jnp.where(ok, q / jnp.where(ok, v, 1), jnp.inf)
    (r0, f0), (r1, f1) = SLIPPAGE_TIERS[-1], SLIPPAGE_LINEAR_END
    linear = jnp.minimum(f0 + (ratio - r0) * ((f1 - f0) / (r1 - r0)), SLIPPAGE_CAP)
    frac = jnp.select([ratio < bound for bound, _ in SLIPPAGE_TIERS],
                      [jnp.asarray(f, dtype) for _, f in SLIPPAGE_TIERS], linear)
    return jnp.where(q > 0, frac, jnp.zeros((), dtype)).astype(dtype)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "none"
    return f"{x:.7f}".rstrip("0").rstrip(".") if x else "0"


def _row_end(rows, i) -> str:
    last = _day(rows[i + 1].start) - np.timedelta64(1, "D") if i + 1 < len(rows) else _LAST
    if last < _FIRST:
        return f"{last} (before coverage, not used)"
    return f"{OPTIONS_SCHEDULE_VERIFIED_THROUGH} (verified through)" if last >= _LAST else str(last)


def options_fee_table() -> str:
    """The options fee schedule, profiles and slippage tiers, with grades and sources, as markdown."""
    lines = [f"Coverage: {OPTIONS_COVERAGE_START} .. {OPTIONS_SCHEDULE_VERIFIED_THROUGH}; other dates raise "
             "OptionFeeScheduleError (use mode=\"flat\" or mode=\"none\" there). Grades as in "
             f"jaxtrade.data.fees ({', '.join(GRADES)}).", "",
             "### Profiles", "", "| profile | commission $ per contract | OCC schedule | description |",
             "|---|---|---|---|"]
    for p in PROFILES.values():
        occ = "OCC clearing fee" if p.occ is OCC_CLEARING_FEES else "OCC retail pass-through"
        lines.append(f"| {p.name} | {_fmt(p.commission_per_contract)} | {occ} | {_md(p.description)} |")
    for title, rows in (("OCC clearing fee (profile occ_direct)", OCC_CLEARING_FEES),
                        ("OCC retail pass-through (profiles retail, alpaca)", OCC_RETAIL_PASS_THROUGH)):
        lines += ["", f"### {title}, both sides", "",
                  "| from | to | $ per contract | flat $ per trade | above contracts | grade | source |",
                  "|---|---|---|---|---|---|---|"]
        for i, r in enumerate(rows):
            lines.append(f"| {r.start} | {_row_end(rows, i)} | {_fmt(r.per_contract)} | "
                         f"{_fmt(r.cap_per_trade)} | {_fmt(r.cap_above_contracts)} | "
                         f"{source_grade(r.source)} | {_md(r.source)} |")
    for title, unit, rows in (("Options regulatory fee (ORF), both sides", "$ per contract", ORF_RATES),
                              ("CAT fee, both sides", "$ per equivalent share (100 per contract)",
                               CAT_RATES)):
        lines += ["", f"### {title}", "", f"| from | to | {unit} | grade | source |", "|---|---|---|---|---|"]
        for i, r in enumerate(rows):
            lines.append(f"| {r.start} | {_row_end(rows, i)} | {_fmt(r.rate)} | {source_grade(r.source)} | "
                         f"{_md(r.source)} |")
    lines += ["", "### SEC Section 31 and FINRA TAF per option contract sold (jaxtrade.data.fees)", "",
              "| from | SEC $ per $1M sold | grade | source |", "|---|---|---|---|"]
    for i, r in enumerate(fees.SEC_SECTION_31):
        nxt = fees.SEC_SECTION_31[i + 1].start if i + 1 < len(fees.SEC_SECTION_31) else None
        if (nxt is None or nxt > OPTIONS_COVERAGE_START) and r.start <= OPTIONS_SCHEDULE_VERIFIED_THROUGH:
            lines.append(f"| {r.start} | {r.per_million:.2f} | {source_grade(r.source)} | {_md(r.source)} |")
    lines += ["", "| from | TAF $ per option contract sold | grade | source |", "|---|---|---|---|"]
    for i, r in enumerate(fees.FINRA_TAF):
        nxt = fees.FINRA_TAF[i + 1].start if i + 1 < len(fees.FINRA_TAF) else None
        if (nxt is None or nxt > OPTIONS_COVERAGE_START) and r.start <= OPTIONS_SCHEDULE_VERIFIED_THROUGH:
            lines.append(f"| {r.start} | {_fmt(r.per_option_contract)} | {source_grade(r.source)} | "
                         f"{_md(r.source)} |")
    lines += ["", "### Slippage (fraction of the premium) by order size / option volume", "",
              "| order / volume | slippage |", "|---|---|"]
    lo = 0.0
    for bound, frac in SLIPPAGE_TIERS:
        lines.append(f"| {lo:.0%} - {bound:.0%} | {frac:.1%} |")
        lo = bound
    (r1, f1), f0 = SLIPPAGE_LINEAR_END, SLIPPAGE_TIERS[-1][1]
    lines.append(f"| >= {lo:.0%} | linear from {f0:.0%} to {f1:.0%} at {r1:.0%}, "
                 f"capped at {SLIPPAGE_CAP:.0%} (also for no volume) |")
    return "\n".join(lines) + "\n"
