"""jaxtrade.live.alpaca against the local fake Alpaca: bars -> MarketData (timeframes, pagination,
validation), the on-disk cache (incremental, atomic), option chains (history start, look-ahead guard, expired
contracts, the options env's inputs). Real alpaca-py clients, 127.0.0.1 only, no JAX compiles."""

import json
import logging
import math
import os

import numpy as np
import pandas as pd
import pytest

from jaxtrade.data import DataError
from jaxtrade.envs.options.pricing import CALL, PUT
from jaxtrade.live import alpaca
from jaxtrade.live.alpaca import (
    TIMEFRAMES,
    CacheError,
    LookAheadError,
    bar_close_time,
    chain_inputs,
    fetch_bars,
    fetch_option_chain,
    fetch_option_contracts,
    timeframe,
)
from tests.live.fake_alpaca import daily_frame

N_DAYS = 60                                          # business days from 2024-01-02 (to 2024-03-25)


def _closes(n, base):
    return [base + i + 0.25 * math.sin(i) for i in range(n)]


@pytest.fixture
def bars(fake_alpaca):
    """SPY and QQQ daily bars; returns {symbol: frame} as added."""
    frames = {"SPY": daily_frame(_closes(N_DAYS, 400.0)), "QQQ": daily_frame(_closes(N_DAYS, 300.0))}
    for sym, f in frames.items():
        fake_alpaca.add_bars(sym, "1Day", f)
    return frames


def _bar_queries(fake):
    return [r["query"] for r in fake.requests_to("/v2/stocks/bars")]


def _same(a, b):
    assert a.symbols == b.symbols and a.dates.equals(b.dates)
    for k in ("close", "open", "high", "low", "volume"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))


# Timeframes.

def test_timeframes_map_to_alpaca_and_bar_seconds():
    assert {n: tf.bar_seconds for n, tf in TIMEFRAMES.items()} == {
        "1Min": 60, "5Min": 300, "15Min": 900, "30Min": 1800, "1Hour": 3600, "4Hour": 14400, "1Day": 86400}
    assert [tf.alpaca.value for tf in TIMEFRAMES.values()] == list(TIMEFRAMES)
    assert timeframe("1Day").periods_per_year() == 252.0
    assert timeframe("1Hour").periods_per_year() == 252.0 * 6.5            # 23,400 s / 3,600 s per day
    assert timeframe("15Min").periods_per_year("all") == 252.0 * 64        # 04:00-20:00
    with pytest.raises(ValueError, match=r"'2Hour' is not one of \['1Min', '5Min', .*'1Day'\]"):
        timeframe("2Hour")


def test_hourly_bars_keep_the_regular_session_in_utc(fake_alpaca, alpaca_clients):
    days = pd.bdate_range("2024-01-02", periods=6)
    idx = pd.DatetimeIndex([d + pd.Timedelta(hours=9 + h) for d in days for h in range(16)], tz="UTC")
    close = 100.0 + np.arange(len(idx)) * 0.1                          # 04:00-19:00 New York (EST = UTC-5)
    frame = pd.DataFrame({"open": close, "high": close + 0.05, "low": close - 0.05, "close": close,
                          "volume": 10.0}, index=idx)
    fake_alpaca.add_bars("SPY", "1Hour", frame)
    md = fetch_bars("SPY", "1Hour", "2024-01-02", "2024-01-10", clients=alpaca_clients)
    assert _bar_queries(fake_alpaca)[0]["timeframe"] == "1Hour"
    assert md.periods_per_year == 252.0 * 6.5 and md.n_rows == 6 * 7       # the 09:00 .. 15:00 ET bars
    assert md.dates[0] == pd.Timestamp("2024-01-02 14:00") and md.dates[6] == pd.Timestamp("2024-01-02 20:00")
    np.testing.assert_array_equal(md.close[:7, 0], close[5:12])
    everything = fetch_bars("SPY", "1Hour", "2024-01-02", "2024-01-10", clients=alpaca_clients, session="all")
    assert everything.n_rows == 96 and everything.periods_per_year == 252.0 * 16


# Bars, pagination, validation.

def test_three_pages_give_the_same_market_data_as_one(fake_alpaca, alpaca_clients):
    spy, qqq = daily_frame(_closes(40, 400.0)), daily_frame(_closes(40, 300.0))
    fake_alpaca.add_bars("SPY", "1Day", spy)
    fake_alpaca.add_bars("QQQ", "1Day", qqq.drop(qqq.index[20]))          # 79 bars in all
    one = fetch_bars(["SPY", "QQQ"], "1Day", "2024-01-02", "2024-02-26", clients=alpaca_clients)
    assert len(_bar_queries(fake_alpaca)) == 1
    fake_alpaca.requests.clear()
    fake_alpaca.page_size = 39                                            # 39 + 39 + 1
    three = fetch_bars(["SPY", "QQQ"], "1Day", "2024-01-02", "2024-02-26", clients=alpaca_clients)
    queries = _bar_queries(fake_alpaca)
    assert len(queries) == 3 and "page_token" not in queries[0] and queries[1]["page_token"] != queries[2][
        "page_token"]
    _same(one, three)
    assert one.symbols == ("SPY", "QQQ") and one.n_rows == 40 and one.periods_per_year == 252.0
    assert one.dates[0] == pd.Timestamp("2024-01-02") and one.dates[-1] == pd.Timestamp("2024-02-26")
    want = {"SPY": spy["close"].to_numpy(), "QQQ": qqq["close"].to_numpy().copy()}
    want["QQQ"][20] = want["QQQ"][19]                                     # the missing bar, filled flat
    for n, sym in enumerate(one.symbols):                                 # the values the fake was given
        np.testing.assert_array_equal(one.close[:, n], want[sym])
    np.testing.assert_array_equal(one.high[:, 0], spy["high"].to_numpy())
    assert queries[0]["feed"] == "iex" and queries[0]["adjustment"] == "all"


def test_missing_bars_follow_the_data_validation_rules(fake_alpaca, alpaca_clients):
    spy = daily_frame(_closes(45, 400.0))
    fake_alpaca.add_bars("SPY", "1Day", spy)
    fake_alpaca.add_bars("QQQ", "1Day", daily_frame(_closes(45, 300.0)).drop(spy.index[[10, 11]]))
    md = fetch_bars(["SPY", "QQQ"], "1Day", "2024-01-01", "2024-03-31", clients=alpaca_clients)
    assert md.n_rows == 45                                                # one calendar: SPY's days
    q = md.symbols.index("QQQ")
    assert md.close[10, q] == md.close[11, q] == md.close[9, q] and md.volume[10, q] == 0.0   # flat fill
    assert md.high[11, q] == md.low[11, q] == md.close[9, q]
    fake_alpaca.add_bars("IWM", "1Day", daily_frame(_closes(45, 200.0)).drop(spy.index[20:27]))
    with pytest.raises(DataError, match=r"symbol IWM, row 2024-01-30: rule 'max-gap' broken: more than "
                                        r"max_gap=5 consecutive missing rows"):
        fetch_bars(["SPY", "IWM"], "1Day", "2024-01-01", "2024-03-31", clients=alpaca_clients)
    with pytest.raises(DataError, match="symbol NONE: rule 'leading-missing'.*no price at all"):
        fetch_bars(["SPY", "NONE"], "1Day", "2024-01-01", "2024-03-31", clients=alpaca_clients)


def test_feed_and_adjustment(fake_alpaca, alpaca_clients, bars):
    with pytest.raises(ValueError, match="feed='sip' needs a market data plan.*allow_sip=True"):
        fetch_bars("SPY", "1Day", "2024-01-02", "2024-03-01", clients=alpaca_clients, feed="sip")
    assert fake_alpaca.requests == []
    fetch_bars("SPY", "1Day", "2024-01-02", "2024-03-01", clients=alpaca_clients, feed="sip", allow_sip=True,
               adjustment="split")
    assert {k: _bar_queries(fake_alpaca)[0][k] for k in ("feed", "adjustment")} == {"feed": "sip",
                                                                                    "adjustment": "split"}
    with pytest.raises(ValueError, match=r"symbols \['SPY'\] appear more than once"):
        fetch_bars(["SPY", "QQQ", "SPY"], "1Day", "2024-01-02", "2024-03-01", clients=alpaca_clients)
    with pytest.raises(ValueError, match=r"adjustment 'splits' is not one of \['all', 'split', 'dividend', "):
        fetch_bars("SPY", "1Day", "2024-01-02", "2024-03-01", clients=alpaca_clients, adjustment="splits")


# The cache.

def _ts(q, key):
    return pd.Timestamp(q[key])


def test_cache_extends_only_the_missing_tail_and_head(fake_alpaca, alpaca_clients, tmp_path):
    early = daily_frame(_closes(20, 390.0), start="2023-12-01")
    late = daily_frame(_closes(N_DAYS, 400.0))
    fake_alpaca.add_bars("SPY", "1Day", pd.concat([early[early.index < late.index[0]], late]))
    get = lambda s, e, **kw: fetch_bars("SPY", "1Day", s, e, clients=alpaca_clients, **kw)
    get("2024-01-02", "2024-02-20", cache_dir=tmp_path)
    assert len(_bar_queries(fake_alpaca)) == 1
    fake_alpaca.requests.clear()
    longer = get("2024-01-02", "2024-03-15", cache_dir=tmp_path)
    (q,) = _bar_queries(fake_alpaca)                                     # only the tail, from the last bar
    assert _ts(q, "start") == pd.Timestamp("2024-02-20 05:00", tz="UTC")
    assert _ts(q, "end") == pd.Timestamp("2024-03-16 03:59:59.999999", tz="UTC")   # Mar 15 in New York (EDT)
    _same(longer, get("2024-01-02", "2024-03-15"))                        # == a fresh download
    fake_alpaca.requests.clear()
    _same(get("2024-01-10", "2024-03-01", cache_dir=tmp_path), get("2024-01-10", "2024-03-01"))
    assert len(_bar_queries(fake_alpaca)) == 1                            # (the fresh one only)
    fake_alpaca.requests.clear()
    wider = get("2023-12-01", "2024-03-15", cache_dir=tmp_path)
    (q,) = _bar_queries(fake_alpaca)                                     # only the head, to the first bar
    assert _ts(q, "start") == pd.Timestamp("2023-12-01 05:00", tz="UTC")
    assert _ts(q, "end") == pd.Timestamp("2024-01-02 05:00", tz="UTC")
    _same(wider, get("2023-12-01", "2024-03-15"))
    manifest = json.loads((next(tmp_path.iterdir()) / "manifest.json").read_text())
    assert manifest["start"] == "2023-12-01T05:00:00+00:00"
    assert manifest["end"] == "2024-03-16T03:59:59.999999+00:00"
    assert manifest["symbols"] == ["SPY"] and manifest["feed"] == "iex" and manifest["adjustment"] == "all"


def test_cache_downloads_again_when_history_changed(fake_alpaca, alpaca_clients, bars, tmp_path, caplog):
    get = lambda s, e, **kw: fetch_bars(["SPY", "QQQ"], "1Day", s, e, clients=alpaca_clients, **kw)
    get("2024-01-02", "2024-02-20", cache_dir=tmp_path)
    halved = bars["SPY"].copy()                                # a 2:1 split rewrites adjusted history
    halved[["open", "high", "low", "close", "vwap"]] *= 0.5
    fake_alpaca.add_bars("SPY", "1Day", halved)
    fake_alpaca.requests.clear()
    with caplog.at_level(logging.WARNING, logger="jaxtrade.live.alpaca"):
        md = get("2024-01-02", "2024-03-15", cache_dir=tmp_path)
    queries = _bar_queries(fake_alpaca)
    assert len(queries) == 2 and _ts(queries[1], "start") == pd.Timestamp("2024-01-02 05:00", tz="UTC")
    assert "cached bars changed (first SPY" in caplog.text
    np.testing.assert_array_equal(md.close[:, 0], halved["close"].to_numpy()[:len(md.dates)])
    _same(md, get("2024-01-02", "2024-03-15"))


def test_recent_bars_are_returned_but_not_cached(fake_alpaca, alpaca_clients, bars, tmp_path):
    now = pd.Timestamp("2024-02-20 06:00", tz="UTC")                      # the Feb 20 bar may still change
    get = lambda: fetch_bars("SPY", "1Day", "2024-01-02", "2024-02-20 23:00", clients=alpaca_clients,
                             cache_dir=tmp_path, now=now)
    first = get()
    assert first.dates[-1] == pd.Timestamp("2024-02-20")
    fake_alpaca.requests.clear()
    _same(get(), first)
    (q,) = _bar_queries(fake_alpaca)
    assert _ts(q, "start") == pd.Timestamp("2024-02-19 05:00", tz="UTC")   # the last cached (final) bar


class SimulatedCrash(BaseException):
    """The process dies here (not an Exception: nothing may catch and tidy up)."""


@pytest.mark.parametrize("crash_on", [1, 2], ids=["data-file", "manifest"])
def test_a_crash_while_writing_leaves_the_previous_cache(fake_alpaca, alpaca_clients, bars, tmp_path,
                                                         monkeypatch, crash_on):
    get = lambda s, e: fetch_bars(["SPY", "QQQ"], "1Day", s, e, clients=alpaca_clients, cache_dir=tmp_path)
    before = get("2024-01-02", "2024-02-20")
    writes, real = [], alpaca._write_chunks

    def dying(f, data):                  # the crash_on-th file written: half of it, then the process dies
        writes.append(len(data))
        if len(writes) == crash_on:
            f.write(data[:len(data) // 2])
            f.flush()
            raise SimulatedCrash
        real(f, data)

    monkeypatch.setattr(alpaca, "_write_chunks", dying)
    with pytest.raises(SimulatedCrash):
        get("2024-01-02", "2024-03-15")
    monkeypatch.undo()
    fake_alpaca.requests.clear()
    _same(get("2024-01-02", "2024-02-20"), before)                       # the old cache, complete
    assert _bar_queries(fake_alpaca) == []
    _same(get("2024-01-02", "2024-03-15"), fetch_bars(["SPY", "QQQ"], "1Day", "2024-01-02", "2024-03-15",
                                                      clients=alpaca_clients))


def test_a_damaged_cache_is_refused(fake_alpaca, alpaca_clients, bars, tmp_path):
    fetch_bars("SPY", "1Day", "2024-01-02", "2024-02-20", clients=alpaca_clients, cache_dir=tmp_path)
    (cache,) = tmp_path.iterdir()
    (data,) = cache.glob("bars-*.npz")
    data.write_bytes(data.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CacheError, match=f"{data}.*does not match the SHA-256.*delete {cache}"):
        fetch_bars("SPY", "1Day", "2024-01-02", "2024-02-20", clients=alpaca_clients, cache_dir=tmp_path)
    assert sorted(os.listdir(cache)) == sorted([data.name, "manifest.json"])


# Option chains.

AS_OF = "2024-03-01"                                                    # a Friday; spot 100
EXPIRIES = {"2024-03-15": 0.20, "2024-04-15": 0.25}                     # dte 14 and 45: at-the-money IV
SKEW = -1.0
STRIKES = np.arange(90.0, 110.01, 2.5)


def _smile_iv(atm, k):
    return atm * (1.0 + SKEW * math.log(k / 100.0))


@pytest.fixture
def chain(fake_alpaca):
    """SPY options on 2024-03-01: two quoted expiries x 9 strikes x {call, put}, IV on a known smile;
    one expired (inactive) expiry without quotes."""
    for exp, atm in EXPIRIES.items():
        for k in STRIKES:
            for kind in ("call", "put"):
                mid = max(k - 100.0 if kind == "call" else 100.0 - k, 0.0) + 1.0 + k / 1000.0
                greeks = dict(delta=0.5 if kind == "call" else -0.5, gamma=0.01, theta=-0.02, vega=0.1,
                              rho=0.01)
                fake_alpaca.add_option("SPY", exp, k, kind, bid=mid - 0.05, ask=mid + 0.05, greeks=greeks,
                                       iv=_smile_iv(atm, k), open_interest=10 * k, trade_price=mid,
                                       quote_time="2024-03-01T20:59:00Z")
    for k in (95.0, 100.0, 105.0):
        fake_alpaca.add_option("SPY", "2024-03-08", k, "call", status="inactive", open_interest=5.0)


def test_option_history_starts_in_february_2024(fake_alpaca, alpaca_clients):
    with pytest.raises(ValueError, match="2024-01-31 is before 2024-02-01: Alpaca's option history starts in "
                                         "February 2024"):
        fetch_option_chain("SPY", "2024-01-31", clients=alpaca_clients, bar_time="2024-01-31 21:00")
    assert fake_alpaca.requests == []


def test_bar_close_time():
    assert bar_close_time("2024-03-01", "1Day") == pd.Timestamp("2024-03-01 21:00", tz="UTC")     # EST
    assert bar_close_time("2024-07-01", "1Day") == pd.Timestamp("2024-07-01 20:00", tz="UTC")     # EDT
    assert bar_close_time(pd.Timestamp("2024-03-01 05:00", tz="UTC"), "1Day") == pd.Timestamp(
        "2024-03-01 21:00", tz="UTC")
    assert bar_close_time("2024-03-01 14:30", "15Min") == pd.Timestamp("2024-03-01 14:45", tz="UTC")
    assert bar_close_time("2024-03-01 14:00", "1Hour") == pd.Timestamp("2024-03-01 15:00", tz="UTC")


def test_look_ahead_guard(fake_alpaca, alpaca_clients, chain):
    close = bar_close_time(AS_OF, "1Day")
    snap = fetch_option_chain("SPY", AS_OF, clients=alpaca_clients, bar_time=close)
    assert snap.quote_time == pd.Timestamp("2024-03-01 20:59", tz="UTC") <= close
    late = fake_alpaca.add_option("SPY", "2024-03-15", 111.0, "call", bid=0.1, ask=0.2, iv=0.3,
                                  quote_time="2024-03-01T21:00:01Z")    # one second after the close
    with pytest.raises(LookAheadError, match=f"option {late}: its snapshot is stamped 2024-03-01 21:00:01"):
        fetch_option_chain("SPY", AS_OF, clients=alpaca_clients, bar_time=close)
    fetch_option_chain("SPY", AS_OF, clients=alpaca_clients, bar_time=close + pd.Timedelta(seconds=1))
    with pytest.raises(LookAheadError, match="as_of 2024-03-04 is after the joined bar's close"):
        fetch_option_chain("SPY", "2024-03-04", clients=alpaca_clients, bar_time=close)


def test_option_contracts_include_expired_over_pages(fake_alpaca, alpaca_clients, chain):
    fake_alpaca.page_size = 4
    got = fetch_option_contracts("SPY", clients=alpaca_clients, expiration_gte="2024-03-01")
    assert len(got) == 2 * 9 * 2 + 3 and set(got["status"]) == {"active", "inactive"}
    expired = got[got["status"] == "inactive"]
    assert list(expired["strike"]) == [95.0, 100.0, 105.0] and (expired["expiry"] == "2024-03-08").all()
    assert list(expired["open_interest"]) == [5.0, 5.0, 5.0]
    qs = [r["query"] for r in fake_alpaca.requests_to("/v2/options/contracts")]
    assert [q["status"] for q in qs] == ["active"] * 9 + ["inactive"]   # 36 active / 4 a page, then 3
    assert qs[0]["underlying_symbols"] == "SPY" and qs[0]["expiration_date_gte"] == "2024-03-01"


def test_chain_snapshot_and_the_env_inputs(fake_alpaca, alpaca_clients, chain):
    snap = fetch_option_chain("SPY", AS_OF, clients=alpaca_clients, bar_time=bar_close_time(AS_OF, "1Day"))
    c = snap.contracts
    assert len(c) == 39 and sorted(set(c["dte"])) == [7, 14, 45]
    row = c[(c["dte"] == 14) & (c["strike"] == 102.5) & (c["kind"] == "put")].iloc[0]
    assert row["bid"] == pytest.approx(1.0525) and row["mid"] == pytest.approx(1.1025)
    assert row["iv"] == pytest.approx(_smile_iv(0.20, 102.5)) and row["delta"] == -0.5
    assert row["open_interest"] == 1025.0 and row["status"] == "active"
    assert c[c["dte"] == 7]["mid"].isna().all()                          # expired: no quotes, OI kept
    inputs = chain_inputs(snap, spot=100.0)
    np.testing.assert_array_equal(inputs.expiry_dte, [7, 14, 45])
    np.testing.assert_allclose(inputs.expiry_atm_iv, [np.nan, 0.20, 0.25], rtol=1e-12)
    np.testing.assert_allclose(inputs.expiry_skew, [np.nan, SKEW, SKEW], rtol=1e-9)
    # total variance atm^2 x dte, linear in dte between 14 and 45 days, read at 30
    w14, w45 = 0.20 ** 2 * 14, 0.25 ** 2 * 45
    assert inputs.atm_iv == pytest.approx(math.sqrt((w14 + (w45 - w14) * 16 / 31) / 30), rel=1e-12)
    assert inputs.skew == pytest.approx(SKEW)
    # the env's grid: expiries 7 .. 35 days -> the nearest quoted (14, 14, 14, 14, 45); strikes 93 .. 107
    np.testing.assert_array_equal(inputs.grid_dte, [14, 14, 14, 14, 45])
    np.testing.assert_array_equal(inputs.grid_strike[0], [92.5, 95, 95, 95, 97.5, 97.5, 100, 100, 100, 102.5,
                                                          102.5, 105, 105, 105, 107.5])
    assert inputs.quotes["mid"].shape == (5, 15, 2)
    q = inputs.quotes
    assert q["mid"][0, 7, CALL] == pytest.approx(1.1) and q["mid"][4, 9, PUT] == pytest.approx(1.1025)
    assert q["iv"][4, 7, PUT] == pytest.approx(0.25) and q["open_interest"][4, 0, CALL] == 925
