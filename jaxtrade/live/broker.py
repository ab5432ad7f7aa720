"""Brokers: where the live runner's orders go. One protocol, two brokers.

    broker.account() -> Account(cash, buying_power, equity)        # quote currency
    broker.positions() -> {symbol: signed qty}                      # open positions only
    broker.submit(OrderIntent) -> Order                             # idempotent by client_order_id
    broker.order_by_client_id(cid) -> Order | None
    broker.orders(status="open" | "closed" | "all") -> [Order];  broker.cancel(order_id)
    broker.close_all(cancel_orders=True) -> [Order]                 # liquidate every position
    broker.clock() -> MarketClock;  broker.calendar(start, end) -> [Session]
    broker.mark(BarMarket)                                          # the bar being traded (SimBroker's price)

1. `AlpacaPaper(clients)` wraps alpaca-py's `TradingClient(paper=True)` (`jaxtrade.live.http.make_clients`):
   every call goes through `http.call` under the trading limiter, with the typed errors of
   `jaxtrade.live.errors`. Orders are market orders, time in force "day"; an `OrderIntent` with legs is a
   multi-leg option order (`OrderClass.MLEG`, 2 to 4 legs with distinct symbols; more or fewer are refused
   before anything is sent). A 422 raises `OrderRejected` echoing the order as sent.
2. Submitting is idempotent: a submit that failed in a way that may have reached Alpaca (429, 5xx, a
   timeout, a dropped connection) is retried only after a backoff and a lookup by its client_order_id that
   finds nothing; a 422 for an order that the lookup then finds (Alpaca refuses a client_order_id it has
   seen: an earlier try got through) returns that order. So a retried order is never doubled.
3. `SimBroker` (dry runs, tests) fills market orders at once at the close of the bar being traded (`mark`)
   and charges the env's own costs (`jaxtrade.envs.market.trade_costs` with the bar's slippage draws): no
   second cost model. It books in float32, the env's precision: positions change by exactly the ordered
   quantities, cash by the traded value and the costs. Buys beyond the cash are rejected (no margin).
4. `mark(BarMarket)` tells a broker which bar the orders of the next calls belong to: SimBroker prices
   fills and its replay clock with it; AlpacaPaper ignores it (the exchange prices orders).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

import jax
import numpy as np
import pandas as pd
from alpaca.trading.enums import OrderClass, OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetCalendarRequest, GetOrdersRequest, MarketOrderRequest, OptionLegRequest

from jaxtrade.envs import market
from jaxtrade.live import errors
from jaxtrade.live.alpaca import NEW_YORK, utc
from jaxtrade.live.http import Clients, RetryPolicy, call, describe

log = logging.getLogger("jaxtrade")

SIDES = ("buy", "sell")
ORDER_STATUSES = ("open", "closed", "all")
MAX_LEGS, MIN_LEGS = 4, 2
MAX_CLIENT_ORDER_ID = 128          # Alpaca's limit on client_order_id
# Errors after which a submitted order may or may not be at Alpaca: look it up before sending it again.
_MAYBE_SENT = (errors.RateLimited, errors.ServerError, errors.RequestTimeout, errors.ConnectionFailed)


@dataclasses.dataclass(frozen=True)
class Account:
    cash: float
    buying_power: float
    equity: float


@dataclasses.dataclass(frozen=True)
class Leg:
    """One leg of a multi-leg option order: an OCC symbol, its ratio to the order's qty, buy | sell."""

    symbol: str
    ratio_qty: float
    side: str


@dataclasses.dataclass(frozen=True)
class OrderIntent:
    """A market order, time in force "day": qty > 0 units of symbol on side buy | sell; or, with 2-4 legs,
    a multi-leg option order of qty spreads (symbol None)."""

    symbol: str | None
    qty: float
    side: str | None
    client_order_id: str
    legs: tuple[Leg, ...] = ()

    def check(self) -> None:
        """ValueError naming the field and the rule (checked before anything is sent)."""
        cid = self.client_order_id
        if not cid or len(cid) > MAX_CLIENT_ORDER_ID:
            raise ValueError(f"client_order_id {cid!r} must be 1 to {MAX_CLIENT_ORDER_ID} characters")
        if not (np.isfinite(self.qty) and self.qty > 0):
            raise ValueError(f"order {cid}: qty must be a finite number > 0, got {self.qty!r}")
        if not self.legs:
            if not self.symbol or self.side not in SIDES:
                raise ValueError(f"order {cid}: a single-leg order needs a symbol and side in {SIDES}, got "
                                 f"symbol={self.symbol!r} side={self.side!r}")
            return
        if not MIN_LEGS <= len(self.legs) <= MAX_LEGS:
            raise ValueError(f"order {cid}: a multi-leg (mleg) option order takes {MIN_LEGS} to {MAX_LEGS} "
                             f"legs, got {len(self.legs)}: split the strategy into orders of at most "
                             f"{MAX_LEGS} legs")
        if len({leg.symbol for leg in self.legs}) != len(self.legs):
            raise ValueError(f"order {cid}: every leg of a multi-leg order needs its own symbol, got "
                             f"{[leg.symbol for leg in self.legs]}")
        for leg in self.legs:
            if leg.side not in SIDES or not (np.isfinite(leg.ratio_qty) and leg.ratio_qty > 0):
                raise ValueError(f"order {cid}: leg {leg} needs side in {SIDES} and ratio_qty > 0")

    def to_json(self) -> dict:
        d = {"symbol": self.symbol, "qty": self.qty, "side": self.side,
             "client_order_id": self.client_order_id}
        if self.legs:
            d["legs"] = [dataclasses.asdict(leg) for leg in self.legs]
        return d


@dataclasses.dataclass(frozen=True)
class Order:
    """An order as the broker reports it. filled_avg_price None until something filled."""

    id: str
    client_order_id: str
    symbol: str | None
    side: str | None
    qty: float
    status: str
    filled_qty: float
    filled_avg_price: float | None = None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class MarketClock:
    """Whether the market is open at `timestamp`; next_open / next_close None where unknown (a replay)."""

    is_open: bool
    timestamp: pd.Timestamp
    next_open: pd.Timestamp | None = None
    next_close: pd.Timestamp | None = None


@dataclasses.dataclass(frozen=True)
class Session:
    """One trading day: its date and its open and close times (UTC)."""

    date: pd.Timestamp
    open: pd.Timestamp
    close: pd.Timestamp


@dataclasses.dataclass(frozen=True)
class BarMarket:
    """The bar being traded, as the runner sees it.

    time: the bar's time (its row's date). params, t: the env params of the runner's window and the row
    of the bar in them (its close, params.data.close[t], is the price orders are sized at). u: [N] float32
    slippage draws of the bar. symbols: the N symbols, in the env's order.
    """

    time: pd.Timestamp
    params: Any
    t: int
    u: np.ndarray
    symbols: tuple[str, ...]


class Broker(Protocol):
    def account(self) -> Account: ...
    def positions(self) -> dict[str, float]: ...
    def submit(self, intent: OrderIntent) -> Order: ...
    def cancel(self, order_id: str) -> None: ...
    def orders(self, status: str = "open") -> list[Order]: ...
    def order_by_client_id(self, client_order_id: str) -> Order | None: ...
    def close_all(self, cancel_orders: bool = True) -> list[Order]: ...
    def clock(self) -> MarketClock: ...
    def calendar(self, start, end) -> list[Session]: ...
    def mark(self, bar: BarMarket) -> None: ...


def _float(x) -> float:
    return float(x) if x not in (None, "") else 0.0


# ALPACA

class AlpacaPaper:
    """The Alpaca paper account behind `clients.trading` (see the module docstring, steps 1-2).

    retry: the submit retry policy (lookups by client_order_id in between); sleep, rng: its waits and jitter.
    """

    def __init__(self, clients: Clients, *, retry: RetryPolicy | None = None, sleep=time.sleep,
                 rng: random.Random | None = None):
        self.clients, self.trading = clients, clients.trading
        self.retry = clients.retry if retry is None else retry
        self._sleep, self._rng = sleep, rng or random.Random()

    def _call(self, fn, method: str, path: str, params=None, **kw):
        return self.clients.trade(fn, describe(method, path, params), **kw)

    def account(self) -> Account:
        a = self._call(self.trading.get_account, "GET", "/v2/account")
        missing = [k for k in ("cash", "buying_power", "equity") if getattr(a, k) in (None, "")]
        if missing:     # never 0: a zero cash or buying power would rebook the book and drop every buy
            raise errors.MalformedResponse("GET /v2/account", f"the account has no {', '.join(missing)}; "
                                           "nothing is traded on a guessed balance: check the account")
        return Account(float(a.cash), float(a.buying_power), float(a.equity))

    def positions(self) -> dict[str, float]:
        ps = self._call(self.trading.get_all_positions, "GET", "/v2/positions")
        return {p.symbol: _float(p.qty) for p in ps if _float(p.qty) != 0.0}

    @staticmethod
    def request(intent: OrderIntent):
        """The alpaca-py MarketOrderRequest of `intent` (checked first)."""
        intent.check()
        qty = round(intent.qty, 9)                  # Alpaca takes up to 9 decimals
        if intent.legs:
            legs = [OptionLegRequest(symbol=leg.symbol, ratio_qty=leg.ratio_qty, side=OrderSide(leg.side))
                    for leg in intent.legs]
            return MarketOrderRequest(qty=qty, order_class=OrderClass.MLEG, legs=legs,
                                      time_in_force=TimeInForce.DAY, client_order_id=intent.client_order_id)
        return MarketOrderRequest(symbol=intent.symbol, qty=qty, side=OrderSide(intent.side),
                                  time_in_force=TimeInForce.DAY, client_order_id=intent.client_order_id)

    def submit(self, intent: OrderIntent) -> Order:
        req = self.request(intent)
        sent = req.to_request_fields()
        what = describe("POST", "/v2/orders", {k: v for k, v in intent.to_json().items() if k != "legs"})
        t0 = time.monotonic()
        for k in range(self.retry.max_tries):
            try:
                return _order(_submit_once(self.clients, self.trading, req, what, sent))
            except errors.OrderRejected:
                # Alpaca refuses a client_order_id it has seen: our order there is an earlier try's.
                if (found := self.order_by_client_id(intent.client_order_id)) is not None:
                    return found
                raise
            except _MAYBE_SENT as e:
                wait = self.retry.backoff(k, self._rng)
                last = k + 1 >= self.retry.max_tries or time.monotonic() - t0 + wait > self.retry.total_s
                self._sleep(wait)                 # give an order that did reach Alpaca the time to show
                if (found := self.order_by_client_id(intent.client_order_id)) is not None:
                    return found
                if last:
                    raise
                log.warning("%s: %s; order %s is not at Alpaca, sending it again", what, type(e).__name__,
                            intent.client_order_id)
        raise AssertionError("unreachable")

    def cancel(self, order_id: str) -> None:
        self._call(lambda: self.trading.cancel_order_by_id(order_id), "DELETE", f"/v2/orders/{order_id}")

    def orders(self, status: str = "open") -> list[Order]:
        if status not in ORDER_STATUSES:
            raise ValueError(f"status must be one of {ORDER_STATUSES}, got {status!r}")
        req = GetOrdersRequest(status=QueryOrderStatus(status), limit=500)
        return [_order(o) for o in self._call(lambda: self.trading.get_orders(req), "GET", "/v2/orders",
                                              {"status": status})]

    def order_by_client_id(self, client_order_id: str) -> Order | None:
        try:
            o = self._call(lambda: self.trading.get_order_by_client_id(client_order_id), "GET",
                           "/v2/orders:by_client_order_id", {"client_order_id": client_order_id})
        except errors.AlpacaError as e:
            if e.status == 404:
                return None
            raise
        return _order(o)

    def close_all(self, cancel_orders: bool = True) -> list[Order]:
        out = self._call(lambda: self.trading.close_all_positions(cancel_orders=cancel_orders), "DELETE",
                         "/v2/positions", {"cancel_orders": cancel_orders})
        orders = [_order(r.body) for r in out if hasattr(r.body, "client_order_id")]
        failed = [r for r in out if not hasattr(r.body, "client_order_id")]
        if failed:
            raise errors.AlpacaError("DELETE /v2/positions", f"{len(failed)} positions could not be closed: "
                                     f"{[(r.symbol, r.status) for r in failed]}; close them by hand")
        return orders

    def clock(self) -> MarketClock:
        c = self._call(self.trading.get_clock, "GET", "/v2/clock")
        return MarketClock(bool(c.is_open), utc(c.timestamp), utc(c.next_open), utc(c.next_close))

    def calendar(self, start, end) -> list[Session]:
        req = GetCalendarRequest(start=pd.Timestamp(start).date(), end=pd.Timestamp(end).date())
        days = self._call(lambda: self.trading.get_calendar(req), "GET", "/v2/calendar",
                          {"start": req.start, "end": req.end})
        ny = lambda ts: pd.Timestamp(ts).tz_localize(NEW_YORK).tz_convert("UTC")
        return [Session(pd.Timestamp(d.date), ny(d.open), ny(d.close)) for d in days]

    def mark(self, bar: BarMarket) -> None:
        """Alpaca prices orders itself."""


def _submit_once(clients: Clients, trading, req, what: str, sent: dict):
    """One POST /v2/orders under the trading limiter, never retried by `call` (the caller looks the order up
    by its client_order_id before sending it again)."""
    return call(lambda: trading.submit_order(req), request=what, limiter=clients.trading_limiter,
                retry=RetryPolicy(max_tries=1), timeout_s=clients.timeout_s, order=sent)


def _order(o) -> Order:
    """Our Order of an alpaca-py Order (a multi-leg order: symbol and side None)."""
    side = getattr(o.side, "value", o.side) or None
    status = getattr(o.status, "value", o.status)
    px = o.filled_avg_price
    return Order(id=str(o.id), client_order_id=o.client_order_id, symbol=o.symbol or None, side=side,
                 qty=_float(o.qty), status=str(status), filled_qty=_float(o.filled_qty),
                 filled_avg_price=None if px in (None, "") else float(px))


# SIMULATED

_trade_costs = jax.jit(market.trade_costs)


class SimBroker:
    """Fills at the close of the marked bar with the env's costs (see the module docstring, step 3).

    symbols: the tradable symbols, in the env's order. cash: the starting cash (quote currency).
    clock: a function returning the MarketClock, e.g. Alpaca's for a dry run on live bars; None: the replay
        clock, open at every marked bar. calendar: a function (start, end) -> [Session]; None: unknown ([]).
    """

    def __init__(self, symbols, cash: float, *, clock: Callable[[], MarketClock] | None = None,
                 calendar: Callable[[Any, Any], list[Session]] | None = None):
        self.symbols = tuple(symbols)
        self._index = {s: i for i, s in enumerate(self.symbols)}
        self._cash = np.float32(cash)
        self._pos = np.zeros(len(self.symbols), np.float32)
        self._orders: list[Order] = []
        self._bar: BarMarket | None = None
        self._close: np.ndarray | None = None          # [N] float32 closes of the marked bar
        self._value0 = np.float32(cash)
        self._clock, self._calendar = clock, calendar

    def mark(self, bar: BarMarket) -> None:
        if tuple(bar.symbols) != self.symbols:
            raise ValueError(f"SimBroker trades {list(self.symbols)}, the bar has {list(bar.symbols)}")
        self._bar = bar
        self._close = np.asarray(jax.device_get(bar.params.data.close[bar.t]), np.float32)
        self._value0 = np.float32(self._cash + np.sum(self._pos * self._close))

    def _price(self) -> np.ndarray:
        if self._close is None:
            raise RuntimeError("SimBroker has no bar to price at: call mark(BarMarket) first")
        return self._close

    def account(self) -> Account:
        held = np.sum(self._pos * self._price()) if self._bar is not None else 0.0
        return Account(float(self._cash), float(max(self._cash, 0.0)), float(self._cash + held))

    def positions(self) -> dict[str, float]:
        return {s: float(q) for s, q in zip(self.symbols, self._pos, strict=True) if q != 0}

    def _fill(self, i: int, signed: np.float32, cid: str, *, check_cash: bool) -> Order:
        bar = self._bar
        price = self._price()
        shares = np.zeros(len(self.symbols), np.float32)
        shares[i] = signed
        cost = np.asarray(_trade_costs(bar.u, shares, bar.t, self._value0, bar.params), np.float32)[i]
        cash = np.float32(np.float32(self._cash - np.float32(signed * price[i])) - cost)
        side = "buy" if signed > 0 else "sell"
        if check_cash and signed > 0 and cash < 0:
            sent = OrderIntent(self.symbols[i], float(abs(signed)), side, cid).to_json()
            raise errors.OrderRejected("POST /v2/orders (SimBroker)", f"insufficient buying power: the buy "
                                       f"costs {float(self._cash - cash):.2f}, the cash is "
                                       f"{float(self._cash):.2f}", order=sent)
        self._cash = cash
        self._pos[i] = np.float32(self._pos[i] + signed)
        qty = float(abs(signed))
        order = Order(f"sim-{len(self._orders) + 1:06d}", cid, self.symbols[i], side, qty, "filled", qty,
                      float(price[i]))
        self._orders.append(order)
        return order

    def submit(self, intent: OrderIntent) -> Order:
        intent.check()
        if intent.legs:
            raise ValueError(f"order {intent.client_order_id}: SimBroker fills equity market orders only; "
                             "multi-leg option orders go to AlpacaPaper")
        if intent.symbol not in self._index:
            raise errors.OrderRejected("POST /v2/orders (SimBroker)", f"unknown symbol {intent.symbol!r}",
                                       order=intent.to_json())
        if self.order_by_client_id(intent.client_order_id) is not None:
            raise errors.OrderRejected("POST /v2/orders (SimBroker)", "client_order_id must be unique",
                                       order=intent.to_json())
        qty = np.float32(intent.qty)
        return self._fill(self._index[intent.symbol], qty if intent.side == "buy" else -qty,
                          intent.client_order_id, check_cash=True)

    def cancel(self, order_id: str) -> None:
        """Every SimBroker order fills at once: nothing is left to cancel."""

    def orders(self, status: str = "open") -> list[Order]:
        if status not in ORDER_STATUSES:
            raise ValueError(f"status must be one of {ORDER_STATUSES}, got {status!r}")
        return [] if status == "open" else list(self._orders)

    def order_by_client_id(self, client_order_id: str) -> Order | None:
        return next((o for o in self._orders if o.client_order_id == client_order_id), None)

    def close_all(self, cancel_orders: bool = True) -> list[Order]:
        held = [(i, q) for i, q in enumerate(self._pos) if q != 0]
        stamp = self._bar.time if self._bar is not None else pd.Timestamp(0)
        return [self._fill(i, np.float32(-q), f"close-{stamp:%Y%m%dT%H%M}-{self.symbols[i]}",
                           check_cash=False) for i, q in held]

    def clock(self) -> MarketClock:
        if self._clock is not None:
            return self._clock()
        stamp = self._bar.time if self._bar is not None else pd.Timestamp(datetime.datetime.now(datetime.UTC))
        return MarketClock(True, utc(stamp))

    def calendar(self, start, end) -> list[Session]:
        return [] if self._calendar is None else self._calendar(start, end)
