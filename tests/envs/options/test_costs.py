"""Options fees and slippage (jaxtrade.envs.options.costs): the issue's golden example, sides, the OCC cap,
profiles and modes, the dated schedule's boundaries and its raising outside coverage, the jnp functions under
jit/vmap in float32, and the slippage tiers."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from jaxtrade.data import fees
from jaxtrade.envs.options import costs as oc
from jaxtrade.envs.options.costs import (
    CAT_RATES,
    FEE_KINDS,
    OCC_CLEARING_FEES,
    OCC_RETAIL_PASS_THROUGH,
    OPTION_FEE_COLUMNS,
    OPTIONS_COVERAGE_START,
    OPTIONS_SCHEDULE_VERIFIED_THROUGH,
    ORF_RATES,
    PUBLISHED_RATES_2024,
    OptionFeeScheduleError,
    contract_fees,
    option_fee_rates,
    slippage_fraction,
)

MID_2024 = "2024-07-01"


def row(date, profile="retail", **kw) -> np.ndarray:
    out = option_fee_rates([date], profile, **kw)
    assert out.shape == (1, len(OPTION_FEE_COLUMNS)) and out.dtype == np.float64
    return out[0]


def named(r) -> dict:
    return dict(zip(OPTION_FEE_COLUMNS, np.asarray(r).tolist(), strict=True))


def fees_of(qty, premium, is_sell, rates, **kw) -> tuple[float, dict]:
    total, by_kind = contract_fees(qty, premium, is_sell, rates, **kw)
    assert by_kind.shape[-1] == len(FEE_KINDS)
    return float(total), dict(zip(FEE_KINDS, np.asarray(by_kind).tolist(), strict=True))


def day_before(iso: str) -> str:
    return str((pd.Timestamp(iso) - pd.Timedelta(days=1)).date())


# --- the golden example ---------------------------------------------------------------------------------

def test_golden_sell_one_contract_at_2_dollars_published_2024_rates():
    """The issue's numbers: $0.7098 in fees and commission, $0.73 with each fee rounded up to the cent."""
    rates = row(MID_2024, mode="flat")      # PUBLISHED_RATES_2024 + the retail $0.65 commission
    total, kinds = fees_of(1, 2.00, True, rates)
    assert total == pytest.approx(0.7098, abs=1e-6)
    expected = dict(commission=0.65, occ=0.02, orf=0.02685, taf=0.00279, sec=27.80e-6 * 200,
                    cat=0.000046 * 100)
    assert kinds == pytest.approx(expected, abs=1e-7)
    total, kinds = fees_of(1, 2.00, True, rates, round_up_cents=True)
    assert total == pytest.approx(0.73, abs=1e-6)
    assert kinds == pytest.approx(dict(commission=0.65, occ=0.02, orf=0.03, taf=0.01, sec=0.01, cat=0.01),
                                  abs=1e-7)


def test_golden_on_schedule_dates_differs_only_by_the_dated_cat_fee():
    """The schedule has every published rate in mid-2024 except CAT, which Industry Members paid only from
    September 2024 transactions: $0.7052 on 2024-07-01, and $0.7100 from October 2024 ($0.000048)."""
    flat = named(row(MID_2024, mode="flat"))
    for date, cat, exact, rounded in (("2024-07-01", 0.0, 0.7052, 0.72),
                                      ("2024-11-01", 0.000048, 0.7100, 0.73)):
        r = named(row(date))
        assert {k: v for k, v in r.items() if k != "cat_per_equivalent_share"} == \
            {k: v for k, v in flat.items() if k != "cat_per_equivalent_share"}
        assert r["cat_per_equivalent_share"] == cat
        assert fees_of(1, 2.0, True, row(date))[0] == pytest.approx(exact, abs=1e-6)
        assert fees_of(1, 2.0, True, row(date), round_up_cents=True)[0] == pytest.approx(rounded, abs=1e-6)


def test_buy_side_pays_no_taf_and_no_sec():
    rates = row(MID_2024, mode="flat")
    total, kinds = fees_of(3, 2.00, False, rates)
    assert kinds["taf"] == 0.0 and kinds["sec"] == 0.0
    assert total == pytest.approx(3 * (0.65 + 0.02 + 0.02685 + 0.0046), abs=1e-6)
    sell, _ = fees_of(3, 2.00, True, rates)
    assert sell - total == pytest.approx(3 * 0.00279 + 27.80e-6 * 600, abs=1e-6)


def test_fees_scale_with_contracts_and_premium_and_vanish_for_no_trade():
    rates = row("2024-11-01")
    t1, k1 = fees_of(1, 2.0, True, rates)
    t10, k10 = fees_of(10, 2.0, True, rates)
    assert t10 == pytest.approx(10 * t1, rel=1e-6)
    _, k_premium = fees_of(1, 4.0, True, rates)
    assert k_premium["sec"] == pytest.approx(2 * k1["sec"], rel=1e-6)        # SEC is on the premium sold
    assert {k: v for k, v in k_premium.items() if k != "sec"} == pytest.approx(
        {k: v for k, v in k1.items() if k != "sec"})
    assert fees_of(-10, 2.0, True, rates)[0] == pytest.approx(t10, rel=1e-6)  # |qty|
    assert fees_of(0, 2.0, True, rates)[0] == 0.0
    assert fees_of(0, 2.0, True, rates, round_up_cents=True)[0] == 0.0


def test_round_up_keeps_exact_cent_amounts_in_float32():
    """float32(0.15) * 100 is a hair above 15: an exact $0.15 or $1.05 commission must stay as it is."""
    rates = oc.flat_fee_row("retail", {"commission_per_contract": 0.15})
    for qty, cents in ((1, 15), (7, 105), (11, 165)):
        kinds = fees_of(qty, 1.0, False, rates, round_up_cents=True)[1]
        assert kinds["commission"] == pytest.approx(cents / 100, abs=1e-7)
        assert kinds["orf"] == pytest.approx(math.ceil(qty * 2.685 - 1e-9) / 100, abs=1e-7)


# --- OCC cap, profiles, modes ---------------------------------------------------------------------------

def test_occ_cap_per_trade_above_2750_contracts():
    rates = row("2024-11-01")
    assert fees_of(2750, 1.0, False, rates)[1]["occ"] == pytest.approx(55.0, rel=1e-6)
    assert fees_of(2751, 1.0, False, rates)[1]["occ"] == pytest.approx(55.0, rel=1e-6)
    assert fees_of(100_000, 1.0, False, rates)[1]["occ"] == pytest.approx(55.0, rel=1e-6)
    assert fees_of(100, 1.0, False, rates)[1]["occ"] == pytest.approx(2.0, rel=1e-6)
    # the flat fee applies above the threshold, not at it: OCC's 2020 tier ($0.045, $55 above 1,222)
    old = oc.flat_fee_row("retail", {"occ_per_contract": 0.045, "occ_cap_above_contracts": 1222})
    assert fees_of(1222, 1.0, False, old)[1]["occ"] == pytest.approx(1222 * 0.045, rel=1e-6)
    assert fees_of(1223, 1.0, False, old)[1]["occ"] == pytest.approx(55.0, rel=1e-6)
    # per order: two legs of 2,000 each pay per contract, one order of 4,000 pays the flat fee
    _, by_kind = contract_fees(jnp.array([2000.0, 2000.0, 4000.0]), 1.0, False, rates)
    assert np.asarray(by_kind[:, FEE_KINDS.index("occ")]) == pytest.approx([40.0, 40.0, 55.0], rel=1e-6)


def test_profiles_commission_and_occ_direct_from_2025_02_14():
    assert named(row("2024-11-01", "retail"))["commission_per_contract"] == 0.65
    alpaca = named(row("2024-11-01", "alpaca"))
    assert alpaca["commission_per_contract"] == 0.0
    assert fees_of(1, 2.0, True, row("2024-11-01", "alpaca"))[0] == pytest.approx(0.7100 - 0.65, abs=1e-6)
    before, on = named(row("2025-02-13", "occ_direct")), named(row("2025-02-14", "occ_direct"))
    assert (before["occ_per_contract"], before["occ_cap_per_trade"]) == (0.02, 55.0)
    assert on["occ_per_contract"] == 0.025
    assert math.isinf(on["occ_cap_per_trade"]) and math.isinf(on["occ_cap_above_contracts"])
    assert fees_of(10_000, 1.0, False, row("2025-02-14", "occ_direct"))[1]["occ"] == pytest.approx(250.0)
    # the retail pass-through keeps $0.02 with the cap
    for profile in ("retail", "alpaca"):
        r = named(row("2025-02-14", profile))
        occ = (r["occ_per_contract"], r["occ_cap_per_trade"], r["occ_cap_above_contracts"])
        assert occ == (0.02, 55.0, 2750)
    with pytest.raises(ValueError, match="unknown options fee profile"):
        option_fee_rates([MID_2024], profile="robinhood")


def test_modes_flat_and_none():
    dates = pd.date_range("1999-01-04", periods=3)             # far outside the schedule: never raises
    none = option_fee_rates(dates, mode="none")
    assert none.shape == (3, len(OPTION_FEE_COLUMNS))
    assert fees_of(5000, 3.0, True, none[0])[0] == 0.0
    flat = option_fee_rates(dates, "alpaca", mode="flat", flat_rates={"orf_per_contract": 0.03})
    assert (flat == flat[0]).all()
    assert named(flat[0]) == {**PUBLISHED_RATES_2024, "commission_per_contract": 0.0,
                              "orf_per_contract": 0.03}
    with pytest.raises(ValueError, match="unknown flat rate names"):
        option_fee_rates(dates, mode="flat", flat_rates={"orf": 0.03})
    with pytest.raises(ValueError, match=">= 0"):
        option_fee_rates(dates, mode="flat", flat_rates={"orf_per_contract": -1.0})
    with pytest.raises(ValueError, match="unknown options fee mode"):
        option_fee_rates(dates, mode="us_schedule")


# --- the dated schedule ---------------------------------------------------------------------------------

def _changes():
    """(column, row start, value from it) for every row start inside the coverage, for each dated kind."""
    out = []
    for column, rows in (("orf_per_contract", ORF_RATES), ("cat_per_equivalent_share", CAT_RATES)):
        out += [(column, r.start, r.rate, "retail") for r in rows]
    for profile, rows in (("retail", OCC_RETAIL_PASS_THROUGH), ("occ_direct", OCC_CLEARING_FEES)):
        out += [("occ_per_contract", r.start, r.per_contract, profile) for r in rows]
        out += [("occ_cap_per_trade", r.start, r.cap_per_trade, profile) for r in rows]
    out += [("sec_rate", r.start, r.per_million / 1e6, "retail") for r in fees.SEC_SECTION_31]
    out += [("taf_per_contract_sold", r.start, r.per_option_contract, "retail") for r in fees.FINRA_TAF]
    return [c for c in out if OPTIONS_COVERAGE_START < c[1] <= OPTIONS_SCHEDULE_VERIFIED_THROUGH]


@pytest.mark.parametrize("column, start, value, profile", _changes())
def test_each_change_on_its_day_and_the_previous_rate_the_day_before(column, start, value, profile):
    on, before = named(row(start, profile))[column], named(row(day_before(start), profile))[column]
    assert on == pytest.approx(value, rel=0, abs=1e-15)
    assert before != on or column.startswith("occ") and profile == "retail"   # retail OCC row repeats $0.02


def test_issue_dates():
    assert named(row("2024-05-22"))["sec_rate"] == pytest.approx(27.80e-6, abs=1e-15)
    assert named(row("2025-05-13"))["sec_rate"] == pytest.approx(27.80e-6, abs=1e-15)
    assert named(row("2025-05-14"))["sec_rate"] == 0.0
    assert named(row("2024-09-01"))["cat_per_equivalent_share"] == 0.000035
    assert named(row("2024-08-31"))["cat_per_equivalent_share"] == 0.0
    for date in ("2024-05-22", "2025-08-31"):
        r = named(row(date))
        assert r["orf_per_contract"] == 0.02685 and r["taf_per_contract_sold"] == 0.00279
    # the SEC and TAF columns are data.fees' own
    reg = fees.regulatory_fee_rates(["2024-07-01", "2025-06-02"])
    ours = option_fee_rates(["2024-07-01", "2025-06-02"])
    assert (ours[:, OPTION_FEE_COLUMNS.index("sec_rate")] == reg[:, 0]).all()
    assert (ours[:, OPTION_FEE_COLUMNS.index("taf_per_contract_sold")] == reg[:, 3]).all()


def test_coverage_bounds_and_the_raise_after_the_last_rate():
    assert (OPTIONS_COVERAGE_START, OPTIONS_SCHEDULE_VERIFIED_THROUGH) == ("2024-05-22", "2025-08-31")
    assert option_fee_rates([OPTIONS_COVERAGE_START, OPTIONS_SCHEDULE_VERIFIED_THROUGH]).shape == (2, 8)
    after = str((pd.Timestamp(OPTIONS_SCHEDULE_VERIFIED_THROUGH) + pd.Timedelta(days=1)).date())
    for date, reason in ((after, "after OPTIONS_SCHEDULE_VERIFIED_THROUGH"), ("2030-01-02", "after"),
                         (day_before(OPTIONS_COVERAGE_START), "ORF row from 2010-02-01"),
                         ("2021-03-01", "ORF row"), ("2005-01-03", "before the first ORF row")):
        with pytest.raises(OptionFeeScheduleError, match=reason) as err:
            option_fee_rates(pd.DatetimeIndex(["2024-07-01", date, "2024-07-02"]))
        msg = str(err.value)
        assert err.value.date == date and date in msg
        assert 'mode="flat"' in msg and 'mode="none"' in msg
        assert isinstance(err.value, fees.FeeScheduleError)
    with pytest.raises(OptionFeeScheduleError, match="missing"):
        option_fee_rates(pd.DatetimeIndex(["2024-07-01", None]))
    table, first = oc.option_fee_rates_or_nan(["2024-07-01", after])
    assert first == after and np.isnan(table[1]).all() and not np.isnan(table[0]).any()


def test_intraday_and_tz_aware_stamps_use_their_calendar_day():
    stamps = pd.DatetimeIndex(["2025-05-13 23:59", "2025-05-14 00:00"]).tz_localize("America/New_York")
    sec = option_fee_rates(stamps)[:, OPTION_FEE_COLUMNS.index("sec_rate")]
    assert sec[0] == pytest.approx(27.80e-6, abs=1e-15) and sec[1] == 0.0


def test_schedule_rows_are_graded_and_the_table_lists_them():
    table = oc.options_fee_table()
    for rows in (OCC_CLEARING_FEES, OCC_RETAIL_PASS_THROUGH, ORF_RATES, CAT_RATES):
        for r in rows:
            grade = fees.source_grade(r.source)
            assert grade in fees.GRADES
            assert (grade == "UNSOURCED") == any(math.isnan(v) for v in oc._values(r))
            assert f"| {r.start} |" in table and r.source[:40] in table
    for text in ("0.02685", "0.000048", "retail", "alpaca", "occ_direct",
                 "| 10% - 20% | 2.0% |", OPTIONS_COVERAGE_START, OPTIONS_SCHEDULE_VERIFIED_THROUGH):
        assert text in table


# --- jnp: legs, jit, vmap, float32 ----------------------------------------------------------------------

def test_elementwise_over_legs_under_jit_and_vmap_in_float32():
    rates = jnp.asarray(option_fee_rates(["2024-07-01", "2024-11-01", "2025-06-02"]), jnp.float32)
    qty = jnp.array([1.0, 5.0, 3000.0, 0.0], jnp.float32)
    premium = jnp.array([2.0, 0.35, 1.1, 4.0], jnp.float32)
    sell = jnp.array([True, False, True, True])
    eager_total, eager_kinds = contract_fees(qty, premium, sell, rates[1])
    assert eager_total.dtype == jnp.float32 and eager_kinds.shape == (4, 6)
    for i in range(4):   # each leg as its own order
        t, _ = contract_fees(qty[i], premium[i], sell[i], rates[1])
        assert float(eager_total[i]) == pytest.approx(float(t), rel=1e-6)
    f = jax.jit(contract_fees, static_argnames="round_up_cents")
    total, kinds = f(qty, premium, sell, rates[1])
    np.testing.assert_allclose(np.asarray(total), np.asarray(eager_total), rtol=1e-6)
    per_day, _ = jax.vmap(lambda r: f(qty, premium, sell, r, round_up_cents=True))(rates)
    assert per_day.shape == (3, 4) and per_day.dtype == jnp.float32
    cents = np.asarray(per_day) * 100
    np.testing.assert_allclose(cents, np.round(cents), atol=1e-3)    # whole cents
    exact = jax.vmap(lambda r: f(qty, premium, sell, r)[0])(rates)
    assert (np.asarray(per_day) >= np.asarray(exact) - 1e-6).all()            # rounding only adds


# --- slippage -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ratio, expected", [
    (0.001, 0.001), (0.0099, 0.001), (0.01, 0.005), (0.049, 0.005), (0.05, 0.01), (0.099, 0.01),
    (0.10, 0.02), (0.199, 0.02), (0.20, 0.02), (0.60, 0.06), (1.0, 0.10), (5.0, 0.10),
])
def test_slippage_tiers(ratio, expected):
    assert float(slippage_fraction(ratio * 1000.0, 1000.0)) == pytest.approx(expected, rel=1e-5)


def test_slippage_no_trade_no_volume_monotone_and_jit():
    assert float(slippage_fraction(0.0, 100.0)) == 0.0
    no_liquidity = slippage_fraction(jnp.ones(3), jnp.array([0.0, -5.0, jnp.nan]))
    np.testing.assert_allclose(np.asarray(no_liquidity), 0.10)
    qty = jnp.linspace(0.0, 300.0, 601)
    frac = jax.jit(slippage_fraction)(qty, 200.0)
    assert frac.dtype == jnp.float32 and frac.shape == (601,)
    assert (np.diff(np.asarray(frac)) >= 0).all() and float(frac.max()) == pytest.approx(0.10)
    assert float(jax.jit(slippage_fraction)(-20.0, 100.0)) == pytest.approx(0.02)   # |qty|: 20% of the volume
