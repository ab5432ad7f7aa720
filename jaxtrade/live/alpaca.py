"""Alpaca market data as jaxtrade data: stock bars -> `MarketData`, option chains -> the options env's inputs.

    clients = make_clients(load_keys())
    md = fetch_bars(["SPY", "QQQ"], "15Min", "2024-03-01", "2024-04-01", clients=clients, cache_dir="cache")
    snap = fetch_option_chain("SPY", "2024-03-28", clients=clients, bar_time=bar_close_time(t, "1Day"))
    inputs = chain_inputs(snap, spot=md.close[-1, 0])      # atm_iv, skew, observed quotes on the env's grid

Bars (`fetch_bars`):
1. One `StockHistoricalDataClient.get_stock_bars(StockBarsRequest(...))` call per missing range (alpaca-py
   follows next_page_token; every page is a rate-limited request), through `http.call`: typed errors, retries.
2. Timeframes "1Min", "5Min", "15Min", "30Min", "1Hour", "4Hour", "1Day" (`TIMEFRAMES`; others refused).
   Times: Alpaca stamps a bar with its OPEN time, in UTC. Intraday rows keep that time as naive UTC;
   daily rows are the bar's New York trading date at midnight (as `jaxtrade.data.dates` treats daily data).
   session="regular" (default) keeps intraday bars that overlap 09:30-16:00 New York time (early-close days
   keep their after-hours bars up to 16:00); "all" keeps extended hours too. periods_per_year: 252 for
   1Day; 252 x session seconds / bar seconds intraday (23,400 s regular, 57,600 s for 04:00-20:00).
3. Every symbol goes onto one calendar (the union of the bars' times) and through `MarketData.from_arrays`:
   exactly the validation and fill policy of a CSV (`jaxtrade.data.validate`: a missing bar is forward-filled
   flat up to max_gap rows, a longer run raises DataError "max-gap" naming the symbol and the row; a symbol
   without bars raises "leading-missing"). Nothing is back-filled.
4. adjustment "all" (default), "split", "dividend" or "raw". Adjusted price LEVELS are not causal (a split
   or dividend rewrites every earlier bar): jaxtrade uses only returns and scale-free features computed
   from them downstream. feed "iex" (default; free) or "sip" (needs allow_sip=True: only a plan with SIP
   data may ask for it, the free plan gets 403).

Cache (cache_dir): one directory per (sorted symbols, timeframe, feed, adjustment), holding `bars-<sha>.npz`
(no pickle) and `manifest.json` (the covered UTC range, the data file's name and SHA-256).
5. A later fetch downloads only what the covered range lacks: the head before it and the tail after it,
   each overlapping the cached data by its first / last bar. If an overlapping bar changed (a split or
   dividend rewrote adjusted history, or Alpaca corrected a bar) the whole range is downloaded again.
6. Only final bars are cached: those ending at least SETTLE_S (15 min, the SIP delay) before `now`.
   Newer bars are returned but fetched again next time.
7. Writes are atomic: the data file, then the manifest, each written to a temporary file, fsynced and
   os.replace-d; the old data file (and any temporary file an earlier crash left) is deleted only after
   the new manifest is in place. A crash at any point leaves the previous complete cache readable. A data
   file that does not match its manifest's SHA-256 raises CacheError naming it. One writer per cache
   directory at a time.

Option chains (`fetch_option_chain`, `fetch_option_contracts`, `chain_inputs`):
8. Contracts from `TradingClient.get_option_contracts` (expiry, strike, open interest), status "active"
   AND "inactive" (expired contracts are inactive), page by page; snapshots (quotes, implied volatility,
   Greeks) from `OptionHistoricalDataClient.get_option_chain(OptionChainRequest(...))`, joined on symbol.
9. Alpaca's option history starts in February 2024: as_of before 2024-02-01 is refused. Look-ahead guard:
   a snapshot (quote or trade) stamped after `bar_time` (the close of the bar it is joined to), or an
   as_of after bar_time's date, raises LookAheadError. The snapshot endpoint serves the latest quotes,
   so a past bar_time is refused unless Alpaca's quotes for it are that old.
10. The options env prices a synthetic Black-Scholes chain from one at-the-money IV per day and a skew
   (`jaxtrade.envs.options.chain`). `chain_inputs` turns a snapshot into exactly those inputs -- `atm_iv`
   (interpolated in total variance to `iv_days` = 30 calendar days, like VIX; for aux["iv"] of that
   row) and `skew` (for ChainConfig.skew) -- plus, for comparison, the observed quotes, IV and Greeks at
   the listed contracts nearest the env's grid (E expiries x K strikes x {call, put}).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import re
import uuid

import numpy as np
import pandas as pd
from alpaca.data.enums import Adjustment, DataFeed, OptionsFeed
from alpaca.data.requests import OptionChainRequest, StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.enums import AssetStatus
from alpaca.trading.requests import GetOptionContractsRequest

from jaxtrade.data import MarketData
from jaxtrade.envs.options import chain as chain_lib
from jaxtrade.envs.options.pricing import CALL, PUT
from jaxtrade.live.http import Clients, describe

log = logging.getLogger(__name__)

NEW_YORK = "America/New_York"
SETTLE_S = 15 * 60
OPTION_HISTORY_START = pd.Timestamp("2024-02-01")
FEEDS = ("iex", "sip")
ADJUSTMENTS = ("all", "split", "dividend", "raw")
SESSIONS = {"regular": ("09:30", "16:00"), "all": ("04:00", "20:00")}
_FIELDS = ("open", "high", "low", "close", "volume")
_CACHE_VERSION = 1
_CHUNK = 1 << 16
_OCC = re.compile(r"^(?P<root>[A-Z.]{1,6})(?P<date>\d{6})(?P<kind>[CP])(?P<strike>\d{8})$")


class CacheError(ValueError):
    """A bar cache that cannot be trusted (names the file and says what to do)."""


class LookAheadError(ValueError):
    """Data stamped after the bar it would be joined to."""


@dataclasses.dataclass(frozen=True)
class Timeframe:
    """A bar length: name ("15Min"), alpaca-py's TimeFrame, and its length in seconds."""

    name: str
    amount: int
    unit: TimeFrameUnit
    bar_seconds: int

    @property
    def alpaca(self) -> TimeFrame:
        return TimeFrame(self.amount, self.unit)

    @property
    def daily(self) -> bool:
        return self.unit == TimeFrameUnit.Day

    def periods_per_year(self, session: str = "regular") -> float:
        """252 for daily bars; 252 x the session's seconds / bar_seconds intraday."""
        if self.daily:
            return 252.0
        lo, hi = (pd.Timedelta(f"{x}:00") for x in SESSIONS[session])
        return 252.0 * (hi - lo).total_seconds() / self.bar_seconds


TIMEFRAMES = {tf.name: tf for tf in (
    Timeframe("1Min", 1, TimeFrameUnit.Minute, 60), Timeframe("5Min", 5, TimeFrameUnit.Minute, 300),
    Timeframe("15Min", 15, TimeFrameUnit.Minute, 900), Timeframe("30Min", 30, TimeFrameUnit.Minute, 1800),
    Timeframe("1Hour", 1, TimeFrameUnit.Hour, 3600), Timeframe("4Hour", 4, TimeFrameUnit.Hour, 14400),
    Timeframe("1Day", 1, TimeFrameUnit.Day, 86400))}


def timeframe(name: str) -> Timeframe:
    """The Timeframe called name; ValueError naming the allowed set otherwise."""
    if name not in TIMEFRAMES:
        raise ValueError(f"timeframe {name!r} is not one of {list(TIMEFRAMES)}")
    return TIMEFRAMES[name]


def utc(ts) -> pd.Timestamp:
    """A timestamp in UTC (naive input is taken as UTC)."""
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _bound(ts, *, end: bool) -> pd.Timestamp:
    """A range bound in UTC. A date (naive midnight) is a New York trading date: its first moment as a
    start, its last microsecond as an end (so end="2024-02-26" includes that day's bars); any other
    naive timestamp is UTC."""
    t = pd.Timestamp(ts)
    if t.tzinfo is None and t == t.normalize():
        t = (t + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)) if end else t
        return t.tz_localize(NEW_YORK).tz_convert("UTC")
    return utc(t)


def bar_close_time(ts, timeframe_name: str) -> pd.Timestamp:
    """When the bar stamped ts (its open, UTC) closes: ts + its length intraday; 16:00 New York time on the
    bar's trading date for 1Day (a daily row's date, naive, is read as that New York date)."""
    tf = timeframe(timeframe_name)
    ts = pd.Timestamp(ts)
    if tf.daily:
        day = (ts.tz_convert(NEW_YORK) if ts.tzinfo is not None else ts).normalize().tz_localize(None)
        return (day + pd.Timedelta(hours=16)).tz_localize(NEW_YORK).tz_convert("UTC")
    return utc(ts) + pd.Timedelta(seconds=tf.bar_seconds)


# Downloads.

_COLUMNS = ("symbol", "t") + _FIELDS


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"symbol": pd.Series([], dtype=str), "t": pd.Series([], dtype="datetime64[ns, UTC]"),
                         **{k: pd.Series([], dtype=np.float64) for k in _FIELDS}})


def _download(clients: Clients, symbols, tf: Timeframe, feed: str, adjustment: str, start, end
              ) -> pd.DataFrame:
    """Every bar of symbols with start <= t <= end: a long frame (symbol, t UTC, open .. volume)."""
    req = StockBarsRequest(symbol_or_symbols=list(symbols), timeframe=tf.alpaca, start=start.to_pydatetime(),
                           end=end.to_pydatetime(), feed=DataFeed(feed), adjustment=Adjustment(adjustment))
    fields = req.to_request_fields()
    barset = clients.data(lambda: clients.stock.get_stock_bars(req),
                          request=describe("GET", "/v2/stocks/bars", {**fields, "timeframe": tf.name}))
    rows = [(b.symbol, b.timestamp, b.open, b.high, b.low, b.close, b.volume)
            for bars in barset.data.values() for b in bars]
    if not rows:
        return _empty()
    f = pd.DataFrame(rows, columns=list(_COLUMNS))
    f["t"] = pd.to_datetime(f["t"], utc=True).dt.as_unit("ns")
    return f.astype({k: np.float64 for k in _FIELDS})


def _merge(*frames) -> pd.DataFrame:
    """Concatenate; a later frame's bar replaces an earlier one at the same (symbol, t)."""
    f = pd.concat([x for x in frames if len(x)] or [_empty()], ignore_index=True)
    f = f.drop_duplicates(["symbol", "t"], keep="last")
    return f.sort_values(["symbol", "t"], kind="stable").reset_index(drop=True)


def _changed(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The (symbol, t) bars present in both whose prices or volume differ (relative 1e-9)."""
    both = old.merge(new, on=["symbol", "t"], suffixes=("_old", "_new"))
    bad = np.zeros(len(both), bool)
    for k in _FIELDS:
        a, b = both[f"{k}_old"].to_numpy(), both[f"{k}_new"].to_numpy()
        bad |= ~np.isclose(a, b, rtol=1e-9, atol=0.0)
    return both[bad]


# The cache.

def _cache_dir(root, symbols, tf: Timeframe, feed: str, adjustment: str) -> str:
    key = "|".join([",".join(sorted(symbols)), tf.name, feed, adjustment])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    readable = "-".join(sorted(symbols))[:60].replace("/", "_")
    name = f"{readable}_{tf.name}_{feed}_{adjustment}_{digest}"
    return os.path.join(os.path.expanduser(os.fspath(root)), name)


def _write_chunks(f, data: bytes) -> None:
    """Write data to the open file f (a seam for the crash-while-writing test)."""
    for i in range(0, len(data), _CHUNK):
        f.write(data[i:i + _CHUNK])


def _fsync_dir(path: str) -> None:
    if os.name == "posix":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: str, data: bytes) -> None:
    """path gets data or keeps what it had: temp file in the same directory, fsync, os.replace."""
    tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with open(tmp, "wb") as f:
        _write_chunks(f, data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path))


class _BarCache:
    """One cache directory (see the module docstring, steps 5-7)."""

    def __init__(self, path: str, key: dict):
        self.path, self.key = path, key
        self.manifest_path = os.path.join(path, "manifest.json")

    def load(self) -> tuple[pd.DataFrame, pd.Timestamp, pd.Timestamp] | None:
        """(bars, covered start, covered end) or None when there is no cache yet."""
        if not os.path.exists(self.manifest_path):
            return None
        with open(self.manifest_path, encoding="utf-8") as f:
            m = json.load(f)
        data_path = os.path.join(self.path, m["data"])
        what = f"bar cache {data_path}"
        if m.get("version") != _CACHE_VERSION or {k: m.get(k) for k in self.key} != self.key:
            raise CacheError(f"{self.manifest_path} does not describe {self.key}: delete {self.path}")
        try:
            with open(data_path, "rb") as f:
                raw = f.read()
        except FileNotFoundError as e:
            raise CacheError(f"{what} named by its manifest is missing: delete {self.path} to refetch") from e
        if hashlib.sha256(raw).hexdigest() != m["sha256"]:
            raise CacheError(f"{what} does not match the SHA-256 in {self.manifest_path} (written by "
                             f"something else, or damaged): delete {self.path} to refetch")
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            names = [str(s) for s in z["symbols"]]
            f = pd.DataFrame({"symbol": np.asarray(names, dtype=object)[z["symbol"]] if len(z["symbol"]) else
                              np.array([], dtype=object),
                              "t": pd.to_datetime(z["t"], utc=True).as_unit("ns"),
                              **{k: z[k] for k in _FIELDS}})
        return f, utc(m["start"]), utc(m["end"])

    def save(self, bars: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> None:
        os.makedirs(self.path, exist_ok=True)
        names = sorted(set(bars["symbol"]))
        index = {s: i for i, s in enumerate(names)}
        buf = io.BytesIO()
        np.savez(buf, symbols=np.array(names, dtype=str),
                 symbol=np.array([index[s] for s in bars["symbol"]], dtype=np.int32),
                 t=bars["t"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(
                     np.int64),
                 **{k: bars[k].to_numpy(np.float64) for k in _FIELDS})
        raw = buf.getvalue()
        sha = hashlib.sha256(raw).hexdigest()
        data_name = f"bars-{sha[:16]}.npz"
        _atomic_write(os.path.join(self.path, data_name), raw)
        manifest = {"version": _CACHE_VERSION, **self.key, "start": start.isoformat(), "end": end.isoformat(),
                    "rows": len(bars), "data": data_name, "sha256": sha}
        _atomic_write(self.manifest_path, json.dumps(manifest, indent=1).encode())
        for name in os.listdir(self.path):      # the old data file, and what an earlier crash left behind
            if name != data_name and (name.startswith("bars-") or ".tmp-" in name):
                os.remove(os.path.join(self.path, name))


def _check_args(symbols, feed: str, adjustment: str, allow_sip: bool, session: str) -> tuple[str, ...]:
    if isinstance(symbols, str):
        symbols = [symbols]
    out = tuple(str(s) for s in symbols)
    if not out or any(not s or s != s.strip() for s in out):
        raise ValueError(f"symbols must be non-empty ticker names without spaces, got {list(symbols)!r}")
    repeated = sorted({s for s in out if out.count(s) > 1})
    if repeated:
        raise ValueError(f"symbols {repeated} appear more than once in {list(out)}: pass each once")
    if feed not in FEEDS:
        raise ValueError(f"feed {feed!r} is not one of {list(FEEDS)}")
    if feed == "sip" and not allow_sip:
        raise ValueError("feed='sip' needs a market data plan that includes SIP data (the free plan has IEX "
                         "only and gets HTTP 403): pass allow_sip=True if yours does, else use feed='iex'")
    if adjustment not in ADJUSTMENTS:
        raise ValueError(f"adjustment {adjustment!r} is not one of {list(ADJUSTMENTS)}")
    if session not in SESSIONS:
        raise ValueError(f"session {session!r} is not one of {list(SESSIONS)}")
    return out


def _bars_with_cache(clients, symbols, tf, feed, adjustment, start, end, cache_dir, now) -> pd.DataFrame:
    """Bars of [start, end] (see the module docstring, steps 5-7), from the cache where it covers them."""
    get = lambda s, e: _download(clients, symbols, tf, feed, adjustment, s, e)
    final_end = min(end, now - pd.Timedelta(seconds=tf.bar_seconds + SETTLE_S))
    if cache_dir is None:
        return get(start, end)
    key = {"symbols": sorted(symbols), "timeframe": tf.name, "feed": feed, "adjustment": adjustment}
    cache = _BarCache(_cache_dir(cache_dir, symbols, tf, feed, adjustment), key)
    loaded = cache.load()
    if loaded is None:
        bars = get(start, end)
        cover = (start, min(end, final_end))
    else:
        old, cs, ce = loaded
        if cs <= start and end <= ce:
            return old
        pieces = []
        if start < cs:
            pieces.append(get(start, old["t"].min() if len(old) else cs))
        if end > ce:
            pieces.append(get(old["t"].max() if len(old) else ce, end))
        changed = pd.concat([_changed(old, p) for p in pieces])
        cover = (min(start, cs), max(ce, min(end, final_end)))
        if len(changed):
            first = changed.iloc[0]
            log.warning("bar cache %s: %d cached bars changed (first %s at %s, close %s -> %s: a split or "
                        "dividend rewrote adjusted history, or Alpaca corrected bars); downloading %s .. %s "
                        "again", cache.path, len(changed), first["symbol"], first["t"], first["close_old"],
                        first["close_new"], cover[0], max(end, ce))
            bars = get(cover[0], max(end, ce))
        else:
            bars = _merge(old, *pieces)
    if cover[1] > cover[0]:
        cache.save(bars[bars["t"] <= cover[1]].reset_index(drop=True), *cover)
    return bars


def _in_session(t: pd.Series, tf: Timeframe, session: str) -> np.ndarray:
    """Bars (open time t, UTC) that overlap the session's New York hours on their date."""
    local = t.dt.tz_convert(NEW_YORK)
    minutes = (local.dt.hour * 60 + local.dt.minute).to_numpy()
    lo, hi = (int(x[:2]) * 60 + int(x[3:]) for x in SESSIONS[session])
    return (minutes < hi) & (minutes + tf.bar_seconds // 60 > lo)


def fetch_bars(symbols, timeframe_name: str, start, end=None, *, clients: Clients, feed: str = "iex",
               adjustment: str = "all", allow_sip: bool = False, cache_dir=None, session: str = "regular",
               max_gap: int = 5, leading: str = "drop", now=None) -> MarketData:
    """Alpaca stock bars of symbols over [start, end] as one validated MarketData (module docstring).

    symbols: a ticker or a list of them (MarketData keeps this order). timeframe_name: a key of TIMEFRAMES.
    start, end: both inclusive, on the bars' open times; a date (naive midnight) is a New York trading
        date (start: its first moment, end: its last); other naive timestamps are UTC; end None = now.
    feed: "iex" | "sip" (with allow_sip=True). adjustment: "all" | "split" | "dividend" | "raw" -- adjusted
        levels are not causal; only returns computed from them are used downstream.
    cache_dir: None (no cache) or the root of the on-disk cache. session: "regular" | "all" (intraday).
    max_gap, leading: the fill policy of `MarketData.from_arrays`. now: the current time (tests).

    Raises:
      ValueError (arguments), jaxtrade.live.errors.AlpacaError subclasses (the requests), DataError (the
      bars break a validation rule), CacheError (a damaged cache).
    """
    tf = timeframe(timeframe_name)
    symbols = _check_args(symbols, feed, adjustment, allow_sip, session)
    now = utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    start, end = _bound(start, end=False), (_bound(end, end=True) if end is not None else now)
    if not start < end:
        raise ValueError(f"start {start} must be before end {end}")
    bars = _bars_with_cache(clients, symbols, tf, feed, adjustment, start, end, cache_dir, now)
    bars = bars[(bars["t"] >= start) & (bars["t"] <= end) & bars["symbol"].isin(symbols)]
    if not tf.daily:
        bars = bars[_in_session(bars["t"], tf, session)]
    t = bars["t"].dt.tz_convert(NEW_YORK).dt.normalize() if tf.daily else bars["t"]
    bars = bars.assign(date=t.dt.tz_localize(None))
    wide = {k: bars.pivot(index="date", columns="symbol", values=k).reindex(columns=list(symbols))
            .sort_index() for k in _FIELDS}
    dates = wide["close"].index
    source = f"alpaca {feed} {tf.name} {adjustment}-adjusted bars of {','.join(symbols)}"
    return MarketData.from_arrays(dates, symbols, wide["close"].to_numpy(), open=wide["open"].to_numpy(),
                                  high=wide["high"].to_numpy(), low=wide["low"].to_numpy(),
                                  volume=wide["volume"].to_numpy(), source=source, max_gap=max_gap,
                                  leading=leading, periods_per_year=tf.periods_per_year(session))


# Option chains.

def _as_of(as_of) -> pd.Timestamp:
    day = pd.Timestamp(as_of)
    day = (day.tz_convert(NEW_YORK).tz_localize(None) if day.tzinfo is not None else day).normalize()
    if day < OPTION_HISTORY_START:
        raise ValueError(f"as_of {day.date()} is before 2024-02-01: Alpaca's option history starts in "
                         "February 2024; pick a later date (or the synthetic chain of jaxtrade.envs.options)")
    return day


def parse_occ(symbol: str) -> tuple[str, pd.Timestamp, float, str]:
    """'SPY240315C00500000' -> ('SPY', Timestamp('2024-03-15'), 500.0, 'call')."""
    m = _OCC.match(symbol)
    if m is None:
        raise ValueError(f"{symbol!r} is not an OCC option symbol (root, YYMMDD, C or P, strike x 1000 in "
                         "8 digits)")
    return (m["root"], pd.Timestamp(f"20{m['date']}"), int(m["strike"]) / 1000.0,
            "call" if m["kind"] == "C" else "put")


def fetch_option_contracts(underlying: str, *, clients: Clients, expiration_gte=None, expiration_lte=None,
                           statuses=("active", "inactive"), page_limit: int = 1000) -> pd.DataFrame:
    """Option contracts of underlying with expiry in [expiration_gte, expiration_lte] (dates), for every
    status in statuses (default active AND inactive: expired contracts are inactive), every page.

    Returns a frame, one row per contract: symbol, expiry (Timestamp), strike, kind ("call" / "put"),
    status, open_interest (NaN if none), open_interest_date, close_price (NaN if none).
    """
    rows = []
    for status in statuses:
        token = None
        while True:
            req = GetOptionContractsRequest(underlying_symbols=[underlying], status=AssetStatus(status),
                                            expiration_date_gte=expiration_gte, limit=page_limit,
                                            expiration_date_lte=expiration_lte, page_token=token)
            resp = clients.trade(lambda req=req: clients.trading.get_option_contracts(req),
                                 request=describe("GET", "/v2/options/contracts", req.to_request_fields()))
            num = lambda x: float(x) if x is not None else np.nan
            for c in resp.option_contracts or []:
                rows.append({"symbol": c.symbol, "expiry": pd.Timestamp(c.expiration_date),
                             "strike": float(c.strike_price), "kind": c.type.value, "status": c.status.value,
                             "open_interest": num(c.open_interest), "close_price": num(c.close_price),
                             "open_interest_date": c.open_interest_date})
            token = resp.next_page_token
            if not token:
                break
    cols = ["symbol", "expiry", "strike", "kind", "status", "open_interest", "open_interest_date",
            "close_price"]
    return pd.DataFrame(rows, columns=cols).drop_duplicates("symbol").reset_index(drop=True)


@dataclasses.dataclass(frozen=True)
class OptionChainSnapshot:
    """One underlying's option chain as Alpaca quoted it, joined to a bar.

    as_of: the chain's date (naive, New York). bar_time: the close of the joined bar (UTC); quote_time: the
    newest quote or trade among the contracts (UTC, <= bar_time) or NaT.
    contracts: one row per contract, sorted by expiry, kind, strike: symbol, expiry, dte (calendar days
    from as_of), strike, kind ("call" / "put"), status, open_interest, bid, ask, mid, last (trade price),
    iv (fraction), delta, gamma, theta (per calendar day, as Alpaca gives it), vega, rho, quote_time. NaN
    where Alpaca has no quote, IV or Greeks.
    """

    underlying: str
    as_of: pd.Timestamp
    bar_time: pd.Timestamp
    quote_time: pd.Timestamp
    contracts: pd.DataFrame


def fetch_option_chain(underlying: str, as_of, *, clients: Clients, bar_time, max_dte: int = 60,
                       feed: str | None = None) -> OptionChainSnapshot:
    """The chain of underlying for expiries in [as_of, as_of + max_dte days]: contracts (open interest,
    expired ones included) joined with Alpaca's snapshots (quotes, IV, Greeks). See the module docstring,
    steps 8-9. feed: "opra" | "indicative" | None (Alpaca's default for the account).

    Raises:
      ValueError: as_of before 2024-02-01 (Alpaca's option history starts in February 2024).
      LookAheadError: as_of after bar_time's New York date, or a quote / trade stamped after bar_time.
    """
    day = _as_of(as_of)
    bar_time = utc(bar_time)
    if day > bar_time.tz_convert(NEW_YORK).tz_localize(None).normalize():
        raise LookAheadError(f"as_of {day.date()} is after the joined bar's close {bar_time}: the chain "
                             "would know the future of that bar")
    last = day + pd.Timedelta(days=max_dte)
    contracts = fetch_option_contracts(underlying, clients=clients, expiration_gte=day.date(),
                                       expiration_lte=last.date())
    req = OptionChainRequest(underlying_symbol=underlying, feed=OptionsFeed(feed) if feed else None,
                             expiration_date_gte=day.date(), expiration_date_lte=last.date())
    fields = {k: v for k, v in req.to_request_fields().items() if k != "underlying_symbol"}
    snaps = clients.data(lambda: clients.option.get_option_chain(req),
                         request=describe("GET", f"/v1beta1/options/snapshots/{underlying}", fields))
    quotes = []
    for sym, s in snaps.items():
        q, tr, g = s.latest_quote, s.latest_trade, s.greeks
        stamps = [x.timestamp for x in (q, tr) if x is not None]
        qt = max(pd.Timestamp(x) for x in stamps) if stamps else pd.NaT
        if stamps and qt > bar_time:
            raise LookAheadError(f"option {sym}: its snapshot is stamped {qt}, after the joined bar's close "
                                 f"{bar_time}; a snapshot may only be joined to a bar that closed after it")
        nan = np.nan
        bid, ask = (q.bid_price, q.ask_price) if q is not None else (nan, nan)
        quotes.append({"symbol": sym, "bid": bid, "ask": ask,
                       "mid": 0.5 * (bid + ask) if bid > 0 and ask > 0 else nan,
                       "last": tr.price if tr is not None else nan,
                       "iv": s.implied_volatility if s.implied_volatility is not None else nan,
                       **{k: getattr(g, k) if g is not None else nan
                          for k in ("delta", "gamma", "theta", "vega", "rho")}, "quote_time": qt})
    cols = ["symbol", "bid", "ask", "mid", "last", "iv", "delta", "gamma", "theta", "vega", "rho",
            "quote_time"]
    # Outer join: a quoted contract missing from the contract list still counts (its terms from the symbol).
    joined = contracts.merge(pd.DataFrame(quotes, columns=cols), on="symbol", how="outer")
    lost = joined["expiry"].isna()
    if lost.any():
        terms = [parse_occ(s) for s in joined.loc[lost, "symbol"]]
        joined.loc[lost, "expiry"] = [t[1] for t in terms]
        joined.loc[lost, "strike"] = [t[2] for t in terms]
        joined.loc[lost, "kind"] = [t[3] for t in terms]
        joined["expiry"] = pd.to_datetime(joined["expiry"])
    joined.insert(2, "dte", (joined["expiry"] - day).dt.days.astype(np.int64))
    joined = joined.sort_values(["expiry", "kind", "strike"], kind="stable").reset_index(drop=True)
    qt = pd.to_datetime(joined["quote_time"], utc=True)
    return OptionChainSnapshot(underlying, day, bar_time, qt.max() if qt.notna().any() else pd.NaT, joined)


@dataclasses.dataclass(frozen=True)
class ChainInputs:
    """What the options env's synthetic chain needs from a snapshot, and the observed chain beside it.

    atm_iv: at-the-money implied vol at iv_days (fraction): the row's aux["iv"]. skew: ChainConfig.skew,
        the slope of iv(K) / atm - 1 on ln(K/S) (at iv_days, interpolated in dte between expiries).
    expiry_dte [E']: the listed expiries (calendar days after as_of), expiry_atm_iv [E'], expiry_skew [E'].
    grid_dte [E]: the quoted expiry (one with a mid) nearest each of the env's (expiry_days(cfg));
        grid_strike [E, K]: its listed strike nearest each of the env's strikes (spot (1 + j strike_step)).
    mid, bid, ask, iv, delta, gamma, theta, vega, rho, open_interest: [E, K, 2] (last axis call, put, as
        `pricing.CALL` / `pricing.PUT`) observed at (grid_dte, grid_strike); NaN where not quoted.
    """

    atm_iv: float
    skew: float
    expiry_dte: np.ndarray
    expiry_atm_iv: np.ndarray
    expiry_skew: np.ndarray
    grid_dte: np.ndarray
    grid_strike: np.ndarray
    quotes: dict


def _smile(rows: pd.DataFrame, spot: float, band: float) -> tuple[float, float]:
    """(atm iv, skew) of one expiry from its out-of-the-money side (puts below spot, calls at and above)."""
    otm = rows[((rows["kind"] == "put") & (rows["strike"] < spot)) | ((rows["kind"] == "call")
                                                                    & (rows["strike"] >= spot))]
    otm = otm[np.isfinite(otm["iv"]) & (otm["iv"] > 0)].sort_values("strike")
    if otm.empty:
        return np.nan, np.nan
    x = np.log(otm["strike"].to_numpy() / spot)
    iv = otm["iv"].to_numpy()
    atm = float(np.interp(0.0, x, iv))              # linear in log-moneyness; flat beyond the listed strikes
    near = np.abs(x) <= band
    xs, ys = x[near], iv[near] / atm - 1.0
    skew = float(np.sum(xs * ys) / np.sum(xs * xs)) if np.sum(xs * xs) > 0 and near.sum() >= 2 else np.nan
    return atm, skew


def chain_inputs(snapshot: OptionChainSnapshot, spot: float, cfg: chain_lib.ChainConfig | None = None, *,
                 iv_days: float = 30.0, moneyness_band: float = 0.10) -> ChainInputs:
    """The options env's chain inputs from an Alpaca snapshot (module docstring, step 10).

    spot: the underlying's price on the joined bar (its close). moneyness_band: |ln(K/S)| of the strikes
    in the skew fit. atm_iv at iv_days: total variance atm^2 dte interpolated linearly in dte between the
    listed expiries around it (the nearest expiry's atm iv outside them). cfg: the env's ChainConfig
    (default ChainConfig()).
    """
    cfg = cfg if cfg is not None else chain_lib.ChainConfig()
    c = snapshot.contracts[snapshot.contracts["dte"] > 0]
    dtes = np.array(sorted(set(c["dte"])), dtype=np.int64)
    smiles = [_smile(c[c["dte"] == d], spot, moneyness_band) for d in dtes]
    atm_e = np.array([s[0] for s in smiles], dtype=np.float64)
    skew_e = np.array([s[1] for s in smiles], dtype=np.float64)
    ok = np.isfinite(atm_e)
    if not ok.any():
        raise ValueError(f"{snapshot.underlying} chain of {snapshot.as_of.date()}: no out-of-the-money "
                         "contract has an implied volatility; nothing to build the chain's inputs from")
    d_ok = dtes[ok].astype(np.float64)
    var = np.interp(iv_days, d_ok, atm_e[ok] ** 2 * d_ok)
    atm = math.sqrt(var / iv_days) if d_ok[0] <= iv_days <= d_ok[-1] else float(
        atm_e[ok][np.argmin(np.abs(d_ok - iv_days))])
    s_ok = np.isfinite(skew_e)
    skew = float(np.interp(iv_days, dtes[s_ok], skew_e[s_ok])) if s_ok.any() else np.nan

    targets = chain_lib.expiry_days(cfg)
    strikes = chain_lib.chain_strikes(np.array([spot]), cfg)[0]
    E, K = len(targets), len(strikes)
    fields = ("mid", "bid", "ask", "iv", "delta", "gamma", "theta", "vega", "rho", "open_interest")
    quotes = {k: np.full((E, K, 2), np.nan) for k in fields}
    grid_dte = np.full(E, np.nan)
    grid_strike = np.full((E, K), np.nan)
    quoted = np.array(sorted(set(c.loc[np.isfinite(c["mid"].to_numpy(np.float64)), "dte"])), dtype=np.int64)
    for e, target in enumerate(targets):
        if not len(quoted):
            break
        d = int(quoted[np.argmin(np.abs(quoted - target))])
        grid_dte[e] = d
        rows = c[c["dte"] == d]
        listed = np.array(sorted(set(rows["strike"])))
        for k, want in enumerate(strikes):
            strike = float(listed[np.argmin(np.abs(listed - want))])
            grid_strike[e, k] = strike
            for side, kind in ((CALL, "call"), (PUT, "put")):
                hit = rows[(rows["strike"] == strike) & (rows["kind"] == kind)]
                if len(hit):
                    for f in fields:
                        quotes[f][e, k, side] = hit[f].iloc[0]
    return ChainInputs(atm, skew, dtes, atm_e, skew_e, grid_dte, grid_strike, quotes)
