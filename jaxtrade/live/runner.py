"""The live runner: a trained model trades one bar at a time through a `Broker`, observing exactly what the
backtest's env would observe, with a journal that survives a crash.

One bar, `Runner.step(bar_time)`:
1. History: `source.history(bar_time)`, a MarketData whose last row r is the bar being traded. Rows < r are
   closed bars; row r's close is the price orders are sized at (live: the latest price, `lead_s` before the
   bar closes; a replay: the recorded close) -- the env's timing: it observes rows < t and trades at close[t].
2. Market hours: a closed `broker.clock()` sends nothing (journaled "skipped").
3. Window: the model's Preprocessor (fitted at training time) cuts rows (r-1, r) with its W history rows;
   `make_split_env` makes the env of those rows, the traded bar at row T = W + 1.
4. Book: the env's `MarketState` at T. When the previous journaled bar is row r-1 and traded normally, it
   is the env's own `transition` of the previous book and action with that bar's slippage draws: exactly
   the backtest's step. Otherwise (first bar, after a skip, an abort, a flattening) it is the broker's
   positions and cash (`market.book_state`). Reconcile: the broker's positions win; where they differ from
   the book's, or its cash by more than the float32 book's rounding (`CASH_TOL` of the equity), the book
   is the broker's (journaled as "rebooked").
5. Observe (`market.observe`). A non-finite observation or price aborts the bar: nothing is sent, an
   alert is logged (logger "jaxtrade", ERROR) and journaled; nothing is ever zero-filled. Act with the
   policy's carry (persisted in the journal). The env's own `trade` turns the action into signed
   share counts (its `target` weights through `market.trade`: the cash floor with the bar's slippage
   draws; the portfolio's "shares" layout its own orders), the backtest's sizing. The turbulence gate
   (the env's threshold, from the Preprocessor) closes every position through
   `broker.close_all(cancel_orders=True)`; so does `flatten_before_close_s` seconds before the close.
6. Orders: shares, whole unless `fractional` (rounded towards zero), quantity-0 skipped, sells first; after
   the sells (and up to `fill_wait_s` for them to fill) buys are scaled down to the buying power. Each
   has client_order_id "<run id>-<bar time %Y%m%dT%H%M>-<symbol>". Our open orders of earlier bars are
   cancelled first.
7. Journal (JSONL, one line per record, flushed and fsynced): an "intent" line (the planned orders, the
   observation digest, the action, the carry) before anything is sent, then, after submitting and
   reconciling, the bar's "done" line (orders with their ids and fills, positions, cash, equity, the book,
   the carry). A restart reads the journal: a bar with an intent and no done line is resumed -- each
   planned order is looked up by its client_order_id first and sent only if the broker does not have it
   -- so a crash between submit and journal never doubles an order.
Randomness: the policy's key and the slippage draws of session bar k follow `eval.backtest`'s schedule
(`session_keys`), so a replay from a backtest's first row reproduces it bit for bit (observations,
actions, carry, value).
Keys never reach the journal: it holds numbers, symbols, order ids and statuses only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxtrade import envs
from jaxtrade.data import DataError, MarketData, load_csv
from jaxtrade.data.features import FEATURE_WARMUP
from jaxtrade.envs import market
from jaxtrade.eval.backtest import core_env
from jaxtrade.live import alpaca
from jaxtrade.live.broker import AlpacaPaper, BarMarket, Broker, OrderIntent, Session, SimBroker
from jaxtrade.live.errors import OrderRejected
from jaxtrade.live.http import make_clients
from jaxtrade.live.keys import load_keys
from jaxtrade.train.artifact import load_model
from jaxtrade.train.setup import load_market_data, make_split_env

log = logging.getLogger("jaxtrade")

KILL_AFTER_SUBMIT = "JAXTRADE_TEST_KILL_AFTER_SUBMIT"   # test-only: SIGKILL after a bar's submits (bar stamp)
CASH_TOL = 1e-5             # book vs broker cash, fraction of equity: the float32 book's rounding
BAR_STAMP = "%Y%m%dT%H%M"
TRANSITION_STATUSES = ("traded", "gate")   # a bar the env's transition books exactly


def live_envs() -> list[str]:
    """The registered envs with a live executor (their registration names the symbols they trade)."""
    return [n for n in envs.registered() if envs.registration(n).traded_symbols is not None]


def traded_symbols(env_config: dict, symbols) -> tuple[str, ...]:
    """The symbols the env trades, as its registration says (e.g. all of them for the portfolio env,
    the one at env.asset for the single env); ValueError for an env with no live executor."""
    name = env_config.get("name")
    pick = envs.registration(name).traded_symbols
    if pick is None:
        raise ValueError(f"the live runner trades the {live_envs()} envs; this model's env is {name!r}, "
                         "whose registration names no live executor (option strategies are not traded "
                         "live yet)")
    return tuple(pick(env_config, tuple(symbols)))


def client_order_id(run_id: str, bar_time, symbol: str) -> str:
    return f"{run_id}-{pd.Timestamp(bar_time):{BAR_STAMP}}-{symbol}"


def check_run_id(run_id: str) -> str:
    if not run_id or len(run_id) > 64 or not all(c.isalnum() or c in "_." for c in run_id):
        raise ValueError(f"run id {run_id!r} must be 1-64 letters, digits, '_' or '.' (it starts every "
                         "client_order_id, which Alpaca limits to 128 characters; '-' separates its parts)")
    return run_id


def session_keys(seed: int, k: int) -> tuple[jax.Array, jax.Array]:
    """(act key, step key) of session bar k: `eval.backtest`'s schedule for step k of an episode
    (key(seed) -> (reset, scan); the scan key split per step; each step's key split into act and step).

    jax's threefry keys are partitionable (jax_threefry_partitionable, the default): split(key, n)[k] does
    not depend on n, so the split is drawn at the next power of two (one compile per doubling)."""
    _, scan = jax.random.split(jax.random.key(seed))
    n = 1 << max(k, 1).bit_length()
    act, step = jax.random.split(jax.random.split(scan, n)[k])
    return act, step


def obs_digest(obs: dict) -> str:
    """SHA-256 of the observation: each entry's name, dtype, shape and float32 bytes, in key order."""
    h = hashlib.sha256()
    for k in sorted(obs):
        x = np.ascontiguousarray(np.asarray(obs[k]))
        h.update(f"{k}:{x.dtype}:{x.shape}\0".encode())
        h.update(x.tobytes())
    return h.hexdigest()


def tree_to_json(tree) -> list:
    """A pytree's leaves as [{"name", "dtype", "shape", "value"}] (float32 values round-trip exactly)."""
    leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
    return [{"name": jax.tree_util.keystr(path), "dtype": str(np.asarray(x).dtype),
             "shape": list(np.shape(x)), "value": np.asarray(x).tolist()} for path, x in leaves]


def tree_from_json(leaves: list, like):
    """The pytree of `like`'s structure from `tree_to_json`'s leaves; ValueError if they do not fit."""
    ref, treedef = jax.tree_util.tree_flatten_with_path(like)
    got = [(d["name"], d["dtype"], tuple(d["shape"])) for d in leaves]
    want = [(jax.tree_util.keystr(p), str(np.asarray(x).dtype), tuple(np.shape(x))) for p, x in ref]
    if got != want:
        raise ValueError(f"the journal's state {got} does not fit this model's {want}: the journal was "
                         "written by another model; start a new run id (or journal directory)")
    return jax.tree.unflatten(treedef, [jnp.asarray(np.asarray(d["value"], d["dtype"])) for d in leaves])


# BARS

def rows_until(md: MarketData, bar_time) -> MarketData:
    """md's rows up to and including bar_time (a fresh MarketData: its feature cache starts empty)."""
    n = int(md.dates.searchsorted(pd.Timestamp(bar_time), "right"))
    cut = lambda x: None if x is None else x[:n]
    return dataclasses.replace(md, dates=md.dates[:n], close=cut(md.close), open=cut(md.open),
                               high=cut(md.high), low=cut(md.low), volume=cut(md.volume),
                               benchmark=cut(md.benchmark), aux={k: v[:n] for k, v in md.aux.items()},
                               _cache={})


class RecordedBars:
    """A recorded session (a replay): `md`'s rows up to each bar time."""

    def __init__(self, md: MarketData):
        self.md = md

    def bar_times(self, start=None, end=None, max_bars: int | None = None) -> list[pd.Timestamp]:
        """The rows to trade: from start (default: the last max_bars rows) to end, at most max_bars."""
        dates = self.md.dates
        if end is not None:
            dates = dates[dates <= pd.Timestamp(end)]
        if start is not None:
            dates = dates[dates >= pd.Timestamp(start)]
        elif max_bars:
            dates = dates[-max_bars:]
        else:
            raise ValueError("a replay needs a start date or a number of bars (max_bars)")
        return list(dates[:max_bars] if max_bars else dates)

    def history(self, bar_time) -> MarketData:
        return rows_until(self.md, bar_time)


class AlpacaBars:
    """Live bars from Alpaca (`jaxtrade.live.alpaca.fetch_bars`), shaped like the model's training data.

    symbols: the model's symbols. benchmark: the symbol whose closes stand in for the training data's
    benchmark (e.g. "SPY" for the S&P 500 index), None where the model has no benchmark features.
    fields: (ohlc, volume) of the training data; Alpaca's bars are cut down to them (a model trained on
    closes only must not see volume: it changes its features, its size regime and its impact costs).
    history_rows: rows fetched before each bar (the features' warm-up, the turbulence window, the window).
    A bar Alpaca has not published yet (no trade in it so far) is appended as a provisional row at the last
    close, so orders are sized at the latest price.
    """

    def __init__(self, clients, symbols, timeframe_name: str, *, benchmark: str | None, fields=(True, True),
                 history_rows: int = 400, feed: str = "iex", allow_sip: bool = False, cache_dir=None,
                 now: Callable[[], pd.Timestamp] | None = None):
        self.tf = alpaca.timeframe(timeframe_name)
        self.clients, self.symbols, self.benchmark = clients, tuple(symbols), benchmark
        self.fields, self.history_rows = tuple(fields), int(history_rows)
        self.kw = dict(feed=feed, allow_sip=allow_sip, cache_dir=cache_dir)
        self.now = now or (lambda: pd.Timestamp.now(tz="UTC"))

    def start_of(self, bar_time) -> pd.Timestamp:
        """A fetch start with history_rows bars before bar_time (weekends and holidays allowed for)."""
        bar_days = 252.0 / self.tf.periods_per_year()           # trading days per bar (regular session)
        days = int(self.history_rows * bar_days * 7 / 5 * 1.15) + 10
        return pd.Timestamp(bar_time) - pd.Timedelta(days=days)

    def history(self, bar_time) -> MarketData:
        wanted = [*self.symbols, *([self.benchmark] if self.benchmark else [])]
        md = rows_until(alpaca.fetch_bars(wanted, self.tf.name, self.start_of(bar_time), self.now(),
                                               clients=self.clients, **self.kw), bar_time)
        n, (ohlc, volume) = len(self.symbols), self.fields
        cols = lambda x, keep=True: None if x is None or not keep else x[:, :n]
        md = dataclasses.replace(md, symbols=self.symbols, close=cols(md.close), open=cols(md.open, ohlc),
                                 high=cols(md.high, ohlc), low=cols(md.low, ohlc),
                                 volume=cols(md.volume, volume), benchmark_name=self.benchmark, _cache={},
                                 benchmark=md.close[:, n] if self.benchmark else None)
        if md.dates[-1] < pd.Timestamp(bar_time):       # no trade in the bar yet: a provisional row
            log.info("no %s bar at %s yet: a provisional row at the last close", self.tf.name, bar_time)
            c = md.close[-1:]
            last = lambda x, fill: None if x is None else np.vstack([x, fill])
            md = dataclasses.replace(
                md, dates=md.dates.append(pd.DatetimeIndex([pd.Timestamp(bar_time)])),
                close=last(md.close, c), open=last(md.open, c), high=last(md.high, c), low=last(md.low, c),
                volume=last(md.volume, np.zeros_like(c)), _cache={},
                benchmark=None if md.benchmark is None else np.append(md.benchmark, md.benchmark[-1]))
        return md


def wake_times(sessions: Iterable[Session], timeframe_name: str, *, lead_s: float
               ) -> Iterator[tuple[pd.Timestamp, pd.Timestamp]]:
    """(bar time, wake time UTC) of every bar of the sessions, in order: 1Day: the session's date, at its
    close - lead_s (early closes included); intraday: each bar's open time (naive UTC, as
    `alpaca.fetch_bars` stamps it) from the open to the close, at the bar's close - lead_s (15Min: 900 s
    apart)."""
    tf, lead = alpaca.timeframe(timeframe_name), pd.Timedelta(seconds=lead_s)
    for s in sessions:
        if tf.daily:
            yield pd.Timestamp(s.date).normalize(), s.close - lead
            continue
        step = pd.Timedelta(seconds=tf.bar_seconds)
        t = s.open
        while t + step <= s.close:
            yield t.tz_convert("UTC").tz_localize(None), t + step - lead
            t += step


# THE RUNNER

@partial(jax.jit, static_argnums=0)
def _advance(core, params, book, action, u):
    """The previous bar's book stepped by the env's own transition to the traded row T (= n_rows - 1)."""
    prev = book.replace(t=jnp.int32(params.data.n_rows - 2))
    return core.transition(u, prev, action, params)[0]


@partial(jax.jit, static_argnums=0)
def _decide(core, policy, params, state, carry, act_key, u):
    """Observe the book, act, size the trade as the env does: (obs, action, carry, shares, target, gate)."""
    obs = market.observe(state, params)
    action, carry_next = policy.act(act_key, carry, obs)
    shares, _, target, gate, _ = core.trade(u, state, action, params)
    return obs, action, carry_next, shares, target, gate


_book_state = jax.jit(market.book_state)


class Journal:
    """JSON lines, each appended whole and fsynced; a torn last line (a crash mid-write) is skipped."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)

    def records(self) -> list[dict]:
        """Every record; a torn last line (no newline: a crash while writing it) is cut off the file."""
        if not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as f:
            data = f.read()
        whole = data[:data.rfind(b"\n") + 1]
        if len(whole) < len(data):
            log.warning("%s: cutting off a torn last line (a crash while writing it)", self.path)
            with open(self.path, "r+b") as f:
                f.truncate(len(whole))
                f.flush()
                os.fsync(f.fileno())
        out = []
        for i, line in enumerate(whole.decode("utf-8").splitlines()):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{self.path}: line {i + 1} is not JSON; the journal is damaged: start a "
                                 "new run id (or repair the line)") from None
        return out

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True, allow_nan=False, default=_json_default)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def _json_default(x):
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, (pd.Timestamp,)):
        return x.isoformat()
    raise TypeError(f"{type(x).__name__} is not JSON")


def plan_orders(symbols, shares: np.ndarray, *, fractional: bool) -> list[tuple[str, float]]:
    """[(symbol, signed qty)] for the signed share counts [N]: whole shares unless fractional (rounded
    towards zero), zeros skipped, every sell before every buy (each side in symbol order)."""
    q = np.asarray(shares, np.float32)
    if not fractional:
        q = np.trunc(q)
    orders = [(s, float(x)) for s, x in zip(symbols, q, strict=True) if x != 0]
    return [o for o in orders if o[1] < 0] + [o for o in orders if o[1] > 0]


def scale_buys(buys: list[tuple[str, float]], prices: dict, buying_power: float, *, fractional: bool
               ) -> tuple[list[tuple[str, float]], float]:
    """Buys scaled down (all by one factor, whole shares rounded down) so their value at `prices` fits the
    buying power; (buys, factor). Quantities that round to 0 are dropped."""
    notional = sum(q * prices[s] for s, q in buys)
    if notional <= buying_power or notional <= 0:
        return buys, 1.0
    alpha = max(buying_power, 0.0) / notional
    out = [(s, float(np.float32(q * alpha)) if fractional else float(np.floor(q * alpha))) for s, q in buys]
    return [(s, q) for s, q in out if q > 0], alpha


class Runner:
    """One model, one broker, one journal (see the module docstring).

    policy, spec: `jaxtrade.train.artifact.load_model`'s. broker: a `Broker`. source: `history(bar_time)`
    -> MarketData (`RecordedBars`, `AlpacaBars`). journal_path: the JSONL journal (resumed if it exists).
    run_id: starts every client_order_id. seed: the session's key schedule (`session_keys`).
    fractional: fractional shares (else whole shares). flatten_before_close_s: close everything that many
    seconds before the close (None: never). fill_wait_s, poll_s, sleep, clock: waiting for the sells to
    fill before buying. record_obs: journal the observation itself (else its digest only). env_config: the
    env config to trade with (default the model's, `spec.env`).
    """

    def __init__(self, policy, spec, broker: Broker, source, *, journal_path: str, run_id: str, seed: int = 0,
                 fractional: bool = False, flatten_before_close_s: float | None = None,
                 fill_wait_s: float = 10.0, poll_s: float = 0.5, sleep=time.sleep, clock=time.monotonic,
                 record_obs: bool = False, env_config: dict | None = None):
        self.env_config = dict(spec.env if env_config is None else env_config)
        traded_symbols(self.env_config, spec.preprocessor.symbols)     # refuses an env with no executor
        self.policy, self.spec, self.broker, self.source = policy, spec, broker, source
        self.pre = spec.preprocessor
        self.symbols = traded_symbols(self.env_config, self.pre.symbols)
        self.run_id = check_run_id(run_id)
        self.journal = Journal(journal_path)
        self.seed, self.fractional, self.record_obs = int(seed), bool(fractional), bool(record_obs)
        self.flatten_before_close_s = flatten_before_close_s
        self.fill_wait_s, self.poll_s, self._sleep, self._clock = fill_wait_s, poll_s, sleep, clock
        self.records = self.journal.records()
        self._warned_other = False          # the account's other symbols: warned about once

    def _last(self, phase: str | None = None) -> dict | None:
        return next((r for r in reversed(self.records) if phase is None or r["phase"] == phase), None)

    def _write(self, record: dict) -> dict:
        record = {"run_id": self.run_id, **record}
        self.journal.append(record)
        self.records.append(record)
        return record

    def run(self, bar_times: Iterable, *, on_bar: Callable[[dict], None] | None = None) -> list[dict]:
        """step() every bar of bar_times (a replay's list, or `live_bars`' generator)."""
        out = []
        for t in bar_times:
            out.append(self.step(t))
            if on_bar is not None:
                on_bar(out[-1])
        return out

    def step(self, bar_time) -> dict:
        """Trade the bar at bar_time (steps 1-7 of the module docstring); returns its "done" record."""
        bar_time = pd.Timestamp(bar_time)
        bar = bar_time.isoformat()
        done = next((r for r in reversed(self.records) if r["phase"] == "done" and r["bar"] == bar), None)
        if done is not None:
            log.info("bar %s is in the journal already (%s): nothing to do", bar, done["status"])
            return done
        last = self._last()
        if last is not None and last["phase"] == "intent":
            if last["bar"] == bar:
                return self._finish(last, resumed=True)
            self._finish(last, resumed=True, submit_missing=False)       # a past bar: look up, never send
        prev = self._last("done")
        k = 0 if prev is None else prev["k"] + 1
        md = self.source.history(bar_time)
        if md.n_rows == 0 or md.dates[-1] != bar_time:
            last_row = md.dates[-1] if md.n_rows else "none"
            return self._skip(bar, k, prev, f"no bar at {bar} in the data (its last row: {last_row})")
        clock = self.broker.clock()
        if not clock.is_open:
            return self._skip(bar, k, prev, f"market closed at {clock.timestamp} (next open "
                                            f"{clock.next_open})")
        r = md.n_rows - 1
        try:
            env, params = make_split_env(self.env_config, self.pre.transform(md, (r - 1, r), name="live"))
        except DataError as e:
            raise ValueError(f"bar {bar}: the model's Preprocessor cannot read the live data: {e}") from e
        core, T = core_env(env), params.data.n_rows - 1
        act_key, step_key = session_keys(self.seed, k)
        u = market.step_uniforms(step_key, params.data.n_assets)
        self.broker.mark(BarMarket(bar_time, params, T, np.asarray(u), self.symbols))
        self._cancel_stale(bar_time)
        book, rebooked, before = self._book(core, params, md, prev)
        carry = self.policy.init() if prev is None else tree_from_json(prev["carry"], self.policy.init())
        obs, action, carry_next, shares, target, gate = _decide(core, self.policy, params, book, carry,
                                                                act_key, u)
        price = np.asarray(params.data.close[T])
        base = {"bar": bar, "k": k, "book": tree_to_json(book), "value": float(book.value),
                "rebooked": rebooked, "positions_before": before}
        bad = [name for name, v in obs.items() if not np.all(np.isfinite(np.asarray(v)))]
        if bad or not np.all(np.isfinite(price)):
            what = f"observation entries {bad}" if bad else "prices"
            log.error("ALERT bar %s: non-finite %s; the bar is aborted and nothing is sent (check the bars "
                      "of %s)", bar, what, list(self.symbols))
            return self._write({**base, "phase": "done", "status": "aborted", "reason": f"non-finite {what}",
                                "carry": tree_to_json(carry), "positions": before})
        base.update(obs_digest=obs_digest(obs), action=np.asarray(action).tolist(),
                    action_dtype=str(np.asarray(action).dtype), target=np.asarray(target).tolist(),
                    gate=bool(gate), carry=tree_to_json(carry_next),
                    prices=dict(zip(self.symbols, price.astype(float).tolist(), strict=True)))
        if self.record_obs:
            base["obs"] = {name: np.asarray(v).tolist() for name, v in obs.items()}
        why = self._close_reason(bool(gate), params, clock)
        if why is not None:
            log.warning("bar %s: %s; closing every position", bar, why)
            intent = {"status": "gate" if bool(gate) else "flatten", "reason": why, "orders": [],
                      "close_all": True}
        else:
            plan = plan_orders(self.symbols, np.asarray(shares), fractional=self.fractional)
            orders = [{"symbol": s, "qty": abs(q), "side": "sell" if q < 0 else "buy",
                       "client_order_id": client_order_id(self.run_id, bar_time, s)} for s, q in plan]
            intent = {"status": "traded", "close_all": False, "orders": orders}
        return self._finish(self._write({**base, **intent, "phase": "intent"}))

    def _close_reason(self, gate: bool, params, clock) -> str | None:
        """Why every position closes this bar (the turbulence gate, flattening before the close), or None."""
        T = params.data.n_rows - 1
        if gate:
            return (f"turbulence gate: turbulence {float(params.data.turbulence[T - 1]):.4g} > threshold "
                    f"{float(params.turbulence_threshold):.4g}")
        s = self.flatten_before_close_s
        left = None if clock.next_close is None else (clock.next_close - clock.timestamp).total_seconds()
        if s is not None and left is not None and left <= s:
            return f"{s:g} s or less before the close ({clock.next_close})"
        return None

    def _skip(self, bar: str, k: int, prev: dict | None, reason: str) -> dict:
        log.warning("bar %s skipped: %s; no orders", bar, reason)
        carry = prev["carry"] if prev is not None else tree_to_json(self.policy.init())
        return self._write({"phase": "done", "bar": bar, "k": k, "status": "skipped", "reason": reason,
                            "carry": carry, "book": prev.get("book") if prev else None})

    def _book(self, core, params, md: MarketData, prev: dict | None):
        """(the book at T, whether it was rebooked from the broker, the broker's positions): step 4."""
        T = params.data.n_rows - 1
        positions, account = self._positions(), self.broker.account()
        held = np.array([positions.get(s, 0.0) for s in self.symbols], np.float32)
        zeros = jnp.zeros((len(self.symbols),), jnp.float32)
        book, target, initial = None, zeros, np.float32(account.cash)
        if prev is not None and prev.get("book") is not None:
            like = _book_state(zeros, jnp.float32(0), T, params, target=zeros, initial_value=jnp.float32(1))
            last = tree_from_json(prev["book"], like)
            target, initial = last.target, last.initial_value
            if prev["status"] in TRANSITION_STATUSES and pd.Timestamp(prev["bar"]) == md.dates[-2]:
                action = jnp.asarray(np.asarray(prev["action"], prev["action_dtype"]))
                u = market.step_uniforms(session_keys(self.seed, prev["k"])[1], len(self.symbols))
                book = _advance(core, params, last, action, u)
                tol = CASH_TOL * max(abs(account.equity), 1.0) + 0.01
                same = np.array_equal(np.asarray(book.holdings), held)
                if same and abs(float(book.cash) - account.cash) <= tol:
                    return book, False, positions
                log.debug("the book is rebooked from the broker: positions %s, cash %.2f (the env's book: "
                          "%s, %.2f)", positions, account.cash, np.asarray(book.holdings).tolist(),
                          float(book.cash))
        fresh = _book_state(jnp.asarray(held), jnp.float32(account.cash), T, params, target=target,
                            initial_value=jnp.asarray(initial, jnp.float32))
        return fresh, book is not None, positions

    def _positions(self) -> dict[str, float]:
        """The broker's positions in the model's symbols (others are not the model's: warned about once)."""
        positions = self.broker.positions()
        other = sorted(set(positions) - set(self.symbols))
        if other and not self._warned_other:
            log.warning("the account also holds %s, which this model does not trade: they are left alone, "
                        "except that the turbulence gate and flattening close every position", other)
            self._warned_other = True
        return {s: q for s, q in positions.items() if s in self.symbols}

    def _cancel_stale(self, bar_time: pd.Timestamp) -> None:
        """Cancel our open orders of earlier bars (a partial fill's rest must not fill on top of new ones)."""
        mine, now = f"{self.run_id}-", client_order_id(self.run_id, bar_time, "")
        for o in self.broker.orders("open"):
            if o.client_order_id.startswith(mine) and not o.client_order_id.startswith(now):
                log.warning("cancelling our open order %s of an earlier bar (%s, %g filled of %g)",
                            o.client_order_id, o.status, o.filled_qty, o.qty)
                self.broker.cancel(o.id)

    def _lookup(self, spec: dict) -> dict | None:
        found = self.broker.order_by_client_id(spec["client_order_id"])
        return None if found is None else {**spec, **found.to_json(), "found_at_broker": True}

    def _submit(self, spec: dict) -> dict:
        try:
            order = self.broker.submit(OrderIntent(spec["symbol"], spec["qty"], spec["side"],
                                                   spec["client_order_id"]))
        except OrderRejected as e:
            log.error("ALERT order rejected: %s", e)
            return {**spec, "status": "rejected", "error": str(e)}
        return {**spec, **order.to_json()}

    def _wait_fills(self, sent: list[dict]) -> None:
        ids = {o.get("id") for o in sent if o.get("status") not in ("filled", "rejected", "not_sent")}
        t0 = self._clock()
        while ids and self._clock() - t0 < self.fill_wait_s:
            self._sleep(self.poll_s)
            ids &= {o.id for o in self.broker.orders("open")}

    def _finish(self, intent: dict, *, resumed: bool = False, submit_missing: bool = True) -> dict:
        """Step 6-7: send the intent's orders, reconcile, journal the "done" record. Resumed: every order is
        looked up by its client_order_id first (and, for a past bar, never sent)."""
        if resumed:
            log.warning("resuming bar %s from its journaled intent: each order is looked up before sending",
                        intent["bar"])
        look = self._lookup if resumed else (lambda o: None)
        send = self._submit if submit_missing else (lambda o: {**o, "status": "not_sent"})
        closed = self.broker.close_all(cancel_orders=True) if intent["close_all"] and submit_missing else []
        sent = [look(o) or send(o) for o in intent["orders"] if o["side"] == "sell"]
        buys = [(o, look(o)) for o in intent["orders"] if o["side"] == "buy"]
        scale = 1.0
        if buys:
            self._wait_fills(sent)
            fresh = [(o["symbol"], o["qty"]) for o, found in buys if found is None]
            scaled, scale = scale_buys(fresh, intent["prices"], self.broker.account().buying_power,
                                       fractional=self.fractional)
            scaled = dict(scaled)
            for o, found in buys:
                sent.append(found or (send({**o, "qty": scaled[o["symbol"]]}) if o["symbol"] in scaled
                                      else {**o, "status": "not_sent", "reason": "buying power"}))
            if scale < 1.0:
                log.warning("bar %s: buys scaled by %.4f to the buying power", intent["bar"], scale)
        if os.environ.get(KILL_AFTER_SUBMIT) in (f"{pd.Timestamp(intent['bar']):{BAR_STAMP}}", "any"):
            os.kill(os.getpid(), signal.SIGKILL)          # test-only: a crash between submit and journal
        positions, account = self._positions(), self.broker.account()
        mismatch = _mismatch(intent, sent, positions)
        if mismatch:
            log.warning("bar %s: the positions differ from what was ordered (partial fills, rejections or "
                        "other trades); the broker's win: %s", intent["bar"], mismatch)
        status = ("rejected" if any(o.get("status") == "rejected" for o in sent)
                  else intent["status"] if submit_missing else "interrupted")
        record = {k: v for k, v in intent.items() if k not in ("phase", "run_id")}
        record.update(phase="done", status=status, orders=sent, closed=[o.to_json() for o in closed],
                      positions=positions, cash=account.cash, equity=account.equity, buy_scale=scale,
                      mismatch=mismatch or None, resumed=resumed)
        # debug: the main prints each bar's line itself (on_bar); the log file keeps this one
        log.debug("bar %s %s: %d orders, equity %.2f", intent["bar"], status, len(sent), account.equity)
        return self._write(record)


def _mismatch(intent: dict, sent: list[dict], positions: dict) -> dict:
    """{symbol: {"expected", "broker"}} where the broker's positions differ from the positions before the bar
    plus what was sent (nothing where everything was closed)."""
    expected = {} if intent["close_all"] else dict(intent.get("positions_before") or {})
    for o in sent:
        if o.get("status") not in ("rejected", "not_sent") and not intent["close_all"]:
            q = np.float32(o["qty"]) * (1 if o["side"] == "buy" else -1)
            expected[o["symbol"]] = float(np.float32(expected.get(o["symbol"], 0.0)) + q)
    return {s: {"expected": expected.get(s, 0.0), "broker": positions.get(s, 0.0)}
            for s in sorted(set(expected) | set(positions))
            if not np.isclose(expected.get(s, 0.0), positions.get(s, 0.0), rtol=1e-9, atol=1e-9)}


def live_bars(broker: Broker, timeframe_name: str, *, lead_s: float = 60.0, max_bars: int | None = None,
              sleep=time.sleep, monotonic=time.monotonic, days_ahead: int = 7) -> Iterator[pd.Timestamp]:
    """The bar times of a live session, each yielded at its wake time (`wake_times` over the broker's
    calendar of the next days_ahead days): the next bar that has not closed yet, after sleeping until
    lead_s before its close. "Now" is the broker's clock at the start plus the time elapsed since. The
    calendar is fetched again only when the sessions fetched so far have no bar left. Ends after max_bars
    bars (None: never) or when the calendar has no session left."""
    t0, m0 = broker.clock().timestamp, monotonic()
    now = lambda: t0 + pd.Timedelta(seconds=monotonic() - m0)
    n, last, lead, sessions = 0, None, pd.Timedelta(seconds=lead_s), []
    pending = lambda today: [(b, w) for b, w in wake_times(sessions, timeframe_name, lead_s=lead_s)
                             if (last is None or b > last) and w + lead > today]
    while max_bars is None or n < max_bars:
        today = now()
        upcoming = pending(today)
        if not upcoming:
            sessions = broker.calendar(today.date(), (today + pd.Timedelta(days=days_ahead)).date())
            upcoming = pending(today)
        if not upcoming:
            return
        bar, wake = upcoming[0]
        wait = (wake - now()).total_seconds()
        if wait > 0:
            sleep(wait)
        yield bar
        n, last = n + 1, bar


# A SESSION

def training_fields(spec) -> tuple[bool, bool]:
    """(OHLC, volume) of the model's training data: live bars are cut to the fields the model's env saw
    (they set its size proxy and impact costs), so a source that cannot be read here is an error."""
    try:
        md = load_market_data(spec.data)
    except (OSError, ValueError) as e:
        source = spec.data.get("csv_path") or spec.data.get("dataset")
        raise ValueError(f"the model's training data ({source}) cannot be read here ({e}); the runner needs "
                         "it to know which bar fields (OHLC, volume) the model was trained on: make the "
                         "file available at that path") from e
    return md.has_ohlc, md.has_volume


def history_rows(pre, converge: int = 400) -> int:
    """Rows of live history per bar: the turbulence window, the feature warm-up and the window the
    Preprocessor needs, plus `converge` rows so the exponentially weighted features (MACD's 26-row EMA:
    (25/27)^400 ~ 4e-14) have forgotten where the fetch began."""
    return int(pre.turbulence_window + FEATURE_WARMUP + pre.window + converge)


def default_run_id(model_dir: str) -> str:
    """<model directory name>_<UTC time %Y%m%dT%H%M%S>, with characters a run id cannot hold as '_'."""
    base = os.path.basename(os.path.abspath(model_dir))
    name = "".join(c if c.isalnum() or c in "_." else "_" for c in base)
    return f"{name[:40]}_{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}"


def paper_trade(model_dir: str, *, timeframe_name: str = "1Day", symbols=None, dry_run: bool = False,
                bars_csv: str | None = None, start=None, end=None, keys=None, url_override: str | None = None,
                max_bars: int | None = None, journal_dir: str = "runs/paper", run_id: str | None = None,
                flatten_before_close_s: float | None = None, allow_sip: bool = False, feed: str = "iex",
                benchmark: str | None = "SPY", cash: float | None = None, fractional: bool = False,
                lead_s: float = 60.0, seed: int = 0, cache_dir=None, record_obs: bool = False,
                regulatory_fees: str | None = None, on_bar: Callable[[dict], None] | None = None,
                sleep=time.sleep) -> str:
    """One paper-trading session of the model artifact in model_dir; returns the journal's path.

    dry_run: SimBroker (no order reaches Alpaca); bars_csv: replay a CSV (rows start .. end, or the last
    max_bars) instead of Alpaca's bars, with no keys needed. Otherwise bars, clock and calendar come from
    Alpaca (url_override: the tests' fake), orders go to the paper account unless dry_run, and the session
    trades each bar as it comes (`live_bars`), max_bars bars (None: until stopped). keys: a
    `jaxtrade.live.keys.Keys` (default `load_keys()`: APCA_API_KEY_ID / APCA_API_SECRET_KEY or .env).
    The journal is <journal_dir>/<run_id>.jsonl (resumed if it exists) beside <run_id>.json (the settings).
    """
    if bars_csv is not None and not dry_run:
        raise ValueError("--bars_csv replays recorded bars, which only a dry run can trade: add --dry_run")
    policy, spec = load_model(model_dir)
    model_symbols = tuple(spec.preprocessor.symbols)
    if symbols is not None and tuple(symbols) != model_symbols:
        raise ValueError(f"--symbols {list(symbols)} differ from the model's {list(model_symbols)} (its "
                         "Preprocessor was fitted on exactly those, in that order): leave --symbols out")
    env_config = dict(spec.env)
    if regulatory_fees is not None:
        env_config["costs"] = dict(env_config.get("costs") or {}, regulatory_fees=regulatory_fees)
    traded = traded_symbols(env_config, model_symbols)
    run_id = check_run_id(run_id or default_run_id(model_dir))
    os.makedirs(journal_dir, exist_ok=True)
    journal = os.path.join(os.path.abspath(journal_dir), f"{run_id}.jsonl")
    settings = {"model": os.path.abspath(model_dir), "symbols": list(model_symbols),
                "timeframe": timeframe_name, "dry_run": dry_run, "bars_csv": bars_csv,
                "start": start and str(start), "end": end and str(end), "paper": True,
                "url_override": url_override, "max_bars": max_bars, "run_id": run_id,
                "flatten_before_close_s": flatten_before_close_s, "feed": feed, "allow_sip": allow_sip,
                "benchmark": benchmark, "fractional": fractional, "lead_s": lead_s, "seed": seed,
                "regulatory_fees": regulatory_fees}
    with open(os.path.join(os.path.dirname(journal), f"{run_id}.json"), "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=1, sort_keys=True)
    needs_bench = "benchmark_return" in spec.preprocessor.market_names
    initial = float(env_config.get("initial_cash", 1_000_000.0)) if cash is None else float(cash)
    if bars_csv is not None:
        options = {k: v for k, v in dict(spec.data.get("csv_options") or {}).items() if v is not None}
        if needs_bench:
            options.setdefault("benchmark_column", benchmark)   # the CSV's column standing in for it
        source = RecordedBars(load_csv(bars_csv, **options))
        broker = SimBroker(traded, initial)
        bars = source.bar_times(start, end, max_bars)
    else:
        clients = make_clients(keys if keys is not None else load_keys(), paper=True,
                               url_override=url_override)
        paper = AlpacaPaper(clients)
        broker = (SimBroker(traded, initial, clock=paper.clock, calendar=paper.calendar) if dry_run
                  else paper)
        source = AlpacaBars(clients, model_symbols, timeframe_name,
                            benchmark=benchmark if needs_bench else None, fields=training_fields(spec),
                            history_rows=history_rows(spec.preprocessor), feed=feed, allow_sip=allow_sip,
                            cache_dir=cache_dir)
        bars = live_bars(paper, timeframe_name, lead_s=lead_s, max_bars=max_bars, sleep=sleep)
    log.info("paper trading %s (%s) on %s bars, %s; journal %s", model_dir, ",".join(model_symbols),
             timeframe_name, "dry run (SimBroker)" if dry_run else "Alpaca paper account", journal)
    runner = Runner(policy, spec, broker, source, journal_path=journal, run_id=run_id, seed=seed,
                    fractional=fractional, flatten_before_close_s=flatten_before_close_s,
                    record_obs=record_obs, env_config=env_config, sleep=sleep)
    runner.run(bars, on_bar=on_bar)
    return journal
