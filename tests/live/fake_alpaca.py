"""A local fake of the Alpaca REST API, for tests only: 127.0.0.1, a free port, started and stopped by
the tests (the `fake_alpaca` fixture in tests/live/conftest.py). It speaks the wire format alpaca-py
parses (the same JSON shapes as Alpaca's), so the real clients point at it through `url_override`.

    fake = FakeAlpaca(); fake.start()                 # fake.url = "http://127.0.0.1:<port>"
    fake.add_bars("SPY", "1Day", frame)               # UTC index; open high low close volume [+ n, vwap]
    fake.page_size = 3                                # bars / snapshots / contracts per page
    fake.fail("/v2/stocks/bars", 500, times=2)        # inject errors, delays, bad bodies by path prefix
    fake.requests                                     # every request: method, path, query, json, headers

Endpoints (paths as alpaca-py sends them with url_override):
  GET  /v2/stocks/bars                       bars, filtered by symbols / timeframe / start <= t <= end,
                                             sorted by symbol then time, min(limit, page_size) per page
  GET  /v1beta1/options/snapshots/{under}    option chain snapshots (contracts added with quotes)
  GET  /v2/options/contracts                 contracts by underlying_symbols, status (default active), filters
  GET  /v2/account                           `account` with equity / market values recomputed from positions
  GET  /v2/positions[/{symbol}]              `positions` priced at `price(symbol)`
  DELETE /v2/positions[?cancel_orders=true]  close all (207: one closing order per position)
  DELETE /v2/positions/{symbol}              close one (an order)
  POST /v2/orders                            accept, fill per `fill` at `price(symbol)`, book the fill
  GET  /v2/orders, /v2/orders/{id}, /v2/orders:by_client_order_id;  DELETE /v2/orders[/{id}]
  GET  /v2/clock, /v2/calendar, /v2/assets/{symbol}
Credentials: the APCA-API-KEY-ID / APCA-API-SECRET-KEY headers must equal key_id / secret, else 401.
Fills: "full" (all of qty), "partial" (half of qty: status partially_filled), "none" (stays new); at
`prices[symbol]` if set, else the close of the symbol's last bar (any timeframe). Options (OCC symbols)
move cash by 100 x price per contract. A second order with a used client_order_id gets 422, as on Alpaca.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

OCC = re.compile(r"^(?P<root>[A-Z.]{1,6})(?P<date>\d{6})(?P<kind>[CP])(?P<strike>\d{8})$")
OPEN_STATUSES = {"new", "partially_filled", "accepted", "pending_new", "accepted_for_bidding",
                 "pending_cancel", "pending_replace", "held"}


def _iso(ts) -> str:
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ts.microsecond:06d}" if ts.microsecond else "") + "Z"


def _num(x: float) -> str:
    """A number as Alpaca writes it in JSON strings: '10', '0.5', '-3.25'."""
    s = f"{float(x):.10f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _utc(s: str) -> pd.Timestamp:
    ts = pd.Timestamp(s)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def occ_symbol(underlying: str, expiry, strike: float, kind: str) -> str:
    """OCC option symbol: SPY240315C00500000 (root, YYMMDD, C/P, strike x 1000 in 8 digits)."""
    return f"{underlying}{pd.Timestamp(expiry):%y%m%d}{kind[0].upper()}{round(strike * 1000):08d}"


def _sid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-alpaca/{name}"))


class FakeClock:
    """An injectable clock for RateLimiter / call: now() and sleep(s), which only moves time on."""

    def __init__(self, t: float = 0.0):
        self.t = float(t)
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(float(s))
        self.t += float(s)


class _Reply(Exception):
    def __init__(self, status: int, body=None, raw: bytes | None = None):
        self.status, self.body, self.raw = status, body, raw


def _error(status: int, message: str, code: int | None = None) -> _Reply:
    return _Reply(status, {"code": code or status * 100000, "message": message})


class FakeAlpaca:
    """See the module docstring. Every attribute below may be set between requests."""

    def __init__(self, key_id: str = "PKFAKEKEY0000000TEST", secret: str = "fake-secret-2f1c9b7e-do-not-log"):
        self.key_id, self.secret = key_id, secret
        self.url: str | None = None
        self.page_size = 10000
        self.fill = "full"
        self.prices: dict[str, float] = {}
        self.positions: dict[str, float] = {}
        self.avg_price: dict[str, float] = {}
        self.orders: list[dict] = []
        self.requests: list[dict] = []
        self.account = {
            "id": _sid("account"), "account_number": "PA3FAKE00001", "status": "ACTIVE",
            "crypto_status": "ACTIVE", "currency": "USD", "cash": "100000", "accrued_fees": "0",
            "pattern_day_trader": False, "trading_blocked": False, "transfers_blocked": False,
            "account_blocked": False, "created_at": "2024-01-02T14:30:00Z", "trade_suspended_by_user": False,
            "multiplier": "1", "shorting_enabled": True, "last_equity": "100000", "initial_margin": "0",
            "maintenance_margin": "0", "last_maintenance_margin": "0", "sma": "0", "daytrade_count": 0,
            "options_approved_level": 2, "options_trading_level": 2}
        self.clock = {"timestamp": "2024-03-01T15:00:00-05:00", "is_open": True,
                      "next_open": "2024-03-04T09:30:00-05:00", "next_close": "2024-03-01T16:00:00-05:00"}
        self.calendar = [{"date": d, "open": "09:30", "close": "16:00", "session_open": "0400",
                          "session_close": "2000", "settlement_date": d}
                         for d in ("2024-02-26", "2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01")]
        self._bars: dict[tuple[str, str], pd.DataFrame] = {}
        self._contracts: dict[str, dict] = {}
        self._snapshots: dict[str, dict] = {}
        self._faults: list[dict] = []
        self._reject: list[str] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's names
                fake._serve(self, "GET")

            def do_POST(self):  # noqa: N802
                fake._serve(self, "POST")

            def do_DELETE(self):  # noqa: N802
                fake._serve(self, "DELETE")

            def do_PATCH(self):  # noqa: N802
                fake._serve(self, "PATCH")

            def log_message(self, *args):
                pass

        self._stop.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="fake-alpaca", daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        self._stop.set()                       # ends pending delays at once
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    # test controls

    def add_bars(self, symbol: str, timeframe: str, frame: pd.DataFrame) -> None:
        """Bars of one symbol and timeframe ("1Day", "15Min", ...); index = bar open times (UTC if naive)."""
        f = frame.copy()
        idx = pd.DatetimeIndex(f.index)
        f.index = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
        with self._lock:
            old = self._bars.get((symbol, timeframe))
            if old is not None:
                f = pd.concat([old, f])
                f = f[~f.index.duplicated(keep="last")]
            self._bars[(symbol, timeframe)] = f.sort_index()

    def add_option(self, underlying: str, expiry, strike: float, kind: str, *, bid: float | None = None,
                   ask: float | None = None, iv: float | None = None, greeks: dict | None = None,
                   quote_time=None, trade_price: float | None = None, open_interest: float | None = None,
                   status: str = "active", close_price: float | None = None) -> str:
        """One contract (kind "call" / "put"); with bid and ask it also has a snapshot (quote at quote_time,
        iv, greeks {delta gamma theta vega rho}). Returns its OCC symbol."""
        sym = occ_symbol(underlying, expiry, strike, kind)
        exp = pd.Timestamp(expiry).strftime("%Y-%m-%d")
        contract = {
            "id": _sid(sym), "symbol": sym, "name": f"{underlying} {exp} {kind} {_num(strike)}",
            "status": status, "tradable": status == "active", "expiration_date": exp,
            "root_symbol": underlying, "underlying_symbol": underlying,
            "underlying_asset_id": _sid(underlying), "type": kind, "style": "american",
            "strike_price": _num(strike), "size": "100",
            "open_interest": None if open_interest is None else _num(open_interest),
            "open_interest_date": None if open_interest is None else exp,
            "close_price": None if close_price is None else _num(close_price),
            "close_price_date": None if close_price is None else exp}
        with self._lock:
            self._contracts[sym] = contract
            if bid is not None and ask is not None:
                t = _iso(quote_time if quote_time is not None else "2024-03-01T20:59:00Z")
                snap = {"latestQuote": {"t": t, "ax": "C", "ap": ask, "as": 10, "bx": "C", "bp": bid,
                                        "bs": 10, "c": "A"}}
                if trade_price is not None:
                    snap["latestTrade"] = {"t": t, "x": "C", "p": trade_price, "s": 1, "c": "I", "i": 0}
                if iv is not None:
                    snap["impliedVolatility"] = iv
                if greeks is not None:
                    snap["greeks"] = {k: float(greeks[k]) for k in ("delta", "gamma", "rho", "theta", "vega")}
                self._snapshots[sym] = snap
        return sym

    def reject_next_order(self, reason: str = "insufficient buying power") -> None:
        with self._lock:
            self._reject.append(reason)

    def fail(self, path_prefix: str, status: int, times: int = 1, body: dict | None = None) -> None:
        """The next `times` requests whose path starts with path_prefix get `status` (and body)."""
        default = {401: "request is not authorized", 403: "forbidden", 422: "unprocessable entity",
                   429: "too many requests.", 500: "internal server error"}.get(status, "error")
        with self._lock:
            self._faults.append(dict(kind="fail", prefix=path_prefix, times=times, status=status,
                                     body=body or {"code": status * 100000, "message": default}))

    def delay(self, path_prefix: str, seconds: float, times: int = 1) -> None:
        """The next `times` matching requests wait `seconds` before they are answered."""
        with self._lock:
            self._faults.append(dict(kind="delay", prefix=path_prefix, times=times, seconds=seconds))

    def malformed(self, path_prefix: str, times: int = 1) -> None:
        """The next `times` matching requests get 200 with a body that is not JSON."""
        with self._lock:
            self._faults.append(dict(kind="malformed", prefix=path_prefix, times=times))

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[dict]:
        """The recorded requests whose path starts with path_prefix (and of that method)."""
        return [r for r in self.requests if r["path"].startswith(path_prefix)
                and (method is None or r["method"] == method)]

    def price(self, symbol: str) -> float:
        """prices[symbol], else the close of the symbol's latest bar (any timeframe)."""
        if symbol in self.prices:
            return float(self.prices[symbol])
        last = None
        for (sym, _), f in self._bars.items():
            if sym == symbol and len(f) and (last is None or f.index[-1] > last[0]):
                last = (f.index[-1], float(f["close"].iloc[-1]))
        if last is None:
            raise _error(400, f"fake: no price for {symbol}: add_bars({symbol!r}, ...) or set "
                              f"prices[{symbol!r}]")
        return last[1]

    # serving

    def _take(self, kind: str, path: str) -> dict | None:
        for f in self._faults:
            if f["kind"] == kind and f["times"] > 0 and path.startswith(f["prefix"]):
                f["times"] -= 1
                return f
        return None

    def _serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        path = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            self.requests.append(dict(method=method, path=path, query=query, json=body,
                                      headers=dict(h.headers)))
            delay = self._take("delay", path)
        if delay is not None and self._stop.wait(delay["seconds"]):
            return
        try:
            with self._lock:
                if (h.headers.get("APCA-API-KEY-ID") != self.key_id
                        or h.headers.get("APCA-API-SECRET-KEY") != self.secret):
                    raise _error(401, "request is not authorized", 40110000)
                fault = self._take("fail", path)
                if fault is not None:
                    raise _Reply(fault["status"], fault["body"])
                if self._take("malformed", path) is not None:
                    raise _Reply(200, raw=b'{"bars": {"SPY": [{"t": "2024-01-0')
                raise _Reply(*self._route(method, path, query, body))
        except _Reply as r:
            self._send(h, r)

    def _send(self, h, r: _Reply) -> None:
        data = r.raw if r.raw is not None else (b"" if r.body is None else json.dumps(r.body).encode())
        try:
            h.send_response(r.status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):      # the client gave up (a timeout test)
            pass

    def _route(self, method: str, path: str, q: dict, body) -> tuple[int, object]:
        m = re.fullmatch
        if method == "GET" and path == "/v2/stocks/bars":
            return 200, self._bars_page(q)
        if method == "GET" and (g := m(r"/v1beta1/options/snapshots/([^/]+)", path)):
            return 200, self._snapshots_page(g.group(1), q)
        if method == "GET" and path == "/v2/options/contracts":
            return 200, self._contracts_page(q)
        if method == "GET" and path == "/v2/account":
            return 200, self._account()
        if method == "GET" and path == "/v2/clock":
            return 200, self.clock
        if method == "GET" and path == "/v2/calendar":
            start, end = q.get("start", "0000"), q.get("end", "9999")
            return 200, [c for c in self.calendar if start <= c["date"] <= end]
        if method == "GET" and (g := m(r"/v2/assets/([^/]+)", path)):
            return 200, self._asset(g.group(1))
        if path == "/v2/positions":
            if method == "GET":
                return 200, [self._position(s) for s in sorted(self.positions) if self.positions[s] != 0]
            if method == "DELETE":
                return 207, self._close_all(q.get("cancel_orders", "").lower() == "true")
        if (g := m(r"/v2/positions/([^/]+)", path)) and method in ("GET", "DELETE"):
            sym = g.group(1)
            if not self.positions.get(sym):
                raise _error(404, "position does not exist", 40410000)
            return (200, self._position(sym)) if method == "GET" else (200, self._close(sym, q))
        if path == "/v2/orders":
            if method == "POST":
                return 200, self._submit(body or {})
            if method == "GET":
                return 200, self._list_orders(q)
            if method == "DELETE":
                return 207, [{"id": o["id"], "status": 200, "body": None} for o in self._cancel_open()]
        if method == "GET" and path == "/v2/orders:by_client_order_id":
            return 200, self._find(lambda o: o["client_order_id"] == q.get("client_order_id"),
                                   q.get("client_order_id"))
        if (g := m(r"/v2/orders/([^/]+)", path)) and method in ("GET", "DELETE"):
            order = self._find(lambda o: o["id"] == g.group(1), g.group(1))
            if method == "GET":
                return 200, order
            if order["status"] not in OPEN_STATUSES:
                raise _error(422, f"order is not cancelable (status {order['status']})", 42210000)
            self._mark_canceled(order)
            return 204, None
        raise _error(404, f"fake: no route for {method} {path}")

    # market data

    @staticmethod
    def _page(items: list, q: dict, page_size: int, default_limit: int) -> tuple[list, str | None]:
        start = int(base64.b64decode(q["page_token"]).decode()) if q.get("page_token") else 0
        n = min(int(q.get("limit") or default_limit), page_size)
        nxt = start + n
        token = base64.b64encode(str(nxt).encode()).decode() if nxt < len(items) else None
        return items[start:nxt], token

    def _bars_page(self, q: dict) -> dict:
        symbols = sorted(s for s in q.get("symbols", "").split(",") if s)
        tf = q.get("timeframe", "1Day")
        start = _utc(q["start"]) if q.get("start") else None
        end = _utc(q["end"]) if q.get("end") else None
        items = []
        for sym in symbols:
            f = self._bars.get((sym, tf))
            if f is None:
                continue
            keep = np.ones(len(f), bool)
            if start is not None:
                keep &= f.index >= start
            if end is not None:
                keep &= f.index <= end
            for ts, row in f[keep].iterrows():
                bar = {"t": _iso(ts), "o": float(row["open"]), "h": float(row["high"]),
                       "l": float(row["low"]), "c": float(row["close"]), "v": float(row["volume"])}
                # Alpaca always sends n and vw (alpaca-py's Bar requires them): defaults 1 trade, vwap = close
                bar["n"] = float(row["trade_count"]) if "trade_count" in row else 1.0
                bar["vw"] = float(row["vwap"]) if "vwap" in row else bar["c"]
                items.append((sym, bar))
        page, token = self._page(items, q, self.page_size, 1000)
        bars: dict[str, list] = {}
        for sym, bar in page:
            bars.setdefault(sym, []).append(bar)
        return {"bars": bars, "next_page_token": token}

    def _match_contract(self, c: dict, q: dict) -> bool:
        strike, exp = float(c["strike_price"]), c["expiration_date"]
        checks = [("type", lambda v: c["type"] == v), ("root_symbol", lambda v: c["root_symbol"] == v),
                  ("strike_price_gte", lambda v: strike >= float(v)),
                  ("strike_price_lte", lambda v: strike <= float(v)),
                  ("expiration_date", lambda v: exp == v), ("expiration_date_gte", lambda v: exp >= v),
                  ("expiration_date_lte", lambda v: exp <= v)]
        return all(ok(q[k]) for k, ok in checks if q.get(k))

    def _snapshots_page(self, underlying: str, q: dict) -> dict:
        items = [(s, snap) for s, snap in sorted(self._snapshots.items())
                 if self._contracts[s]["underlying_symbol"] == underlying
                 and self._match_contract(self._contracts[s], q)]
        page, token = self._page(items, q, self.page_size, 100)
        return {"snapshots": dict(page), "next_page_token": token}

    def _contracts_page(self, q: dict) -> dict:
        unders = set(q.get("underlying_symbols", "").split(",")) - {""}
        status = q.get("status", "active")
        items = [c for _, c in sorted(self._contracts.items())
                 if (not unders or c["underlying_symbol"] in unders) and c["status"] == status
                 and self._match_contract(c, q)]
        page, token = self._page(items, q, self.page_size, 100)
        return {"option_contracts": page, "next_page_token": token}

    # account and positions

    @staticmethod
    def _multiplier(sym: str) -> float:
        return 100.0 if OCC.match(sym) else 1.0

    def _market_value(self, sym: str) -> float:
        return self.positions[sym] * self.price(sym) * self._multiplier(sym)

    def _account(self) -> dict:
        cash = float(self.account["cash"])
        values = {s: self._market_value(s) for s, q in self.positions.items() if q != 0}
        long_mv = sum(v for v in values.values() if v > 0)
        short_mv = sum(v for v in values.values() if v < 0)
        equity = cash + long_mv + short_mv
        out = dict(self.account)
        out.update(equity=_num(equity), portfolio_value=_num(equity), long_market_value=_num(long_mv),
                   short_market_value=_num(short_mv))
        for k in ("buying_power", "regt_buying_power", "daytrading_buying_power",
                  "non_marginable_buying_power", "options_buying_power"):
            out.setdefault(k, _num(max(cash, 0.0)))
        return out

    def _asset(self, sym: str) -> dict:
        return {"id": _sid(sym), "class": "us_option" if OCC.match(sym) else "us_equity",
                "exchange": "NASDAQ", "symbol": sym, "name": sym, "status": "active", "tradable": True,
                "marginable": True, "shortable": True, "easy_to_borrow": True, "fractionable": True,
                "attributes": []}

    def _position(self, sym: str) -> dict:
        qty = self.positions[sym]
        px, avg, mult = self.price(sym), self.avg_price.get(sym, self.price(sym)), self._multiplier(sym)
        option = bool(OCC.match(sym))
        cost = qty * avg * mult
        mv = qty * px * mult
        return {"asset_id": _sid(sym), "symbol": sym, "exchange": "" if option else "NASDAQ",
                "asset_class": "us_option" if option else "us_equity", "asset_marginable": not option,
                "avg_entry_price": _num(avg), "qty": _num(qty), "side": "long" if qty > 0 else "short",
                "market_value": _num(mv), "cost_basis": _num(cost), "unrealized_pl": _num(mv - cost),
                "unrealized_plpc": _num((mv - cost) / abs(cost) if cost else 0.0),
                "unrealized_intraday_pl": "0", "unrealized_intraday_plpc": "0", "current_price": _num(px),
                "lastday_price": _num(px), "change_today": "0", "qty_available": _num(qty)}

    def _close(self, sym: str, q: dict) -> dict:
        held = self.positions[sym]
        qty = abs(held)
        if q.get("qty"):
            qty = float(q["qty"])
        elif q.get("percentage"):
            qty = abs(held) * float(q["percentage"]) / 100.0
        return self._submit({"symbol": sym, "qty": _num(qty), "side": "sell" if held > 0 else "buy",
                             "type": "market", "time_in_force": "day"})

    def _close_all(self, cancel_orders: bool) -> list:
        if cancel_orders:
            self._cancel_open()
        out = []
        for sym in sorted(s for s, qty in self.positions.items() if qty != 0):
            order = self._close(sym, {})
            out.append({"order_id": order["id"], "status": 200, "symbol": sym, "body": order})
        return out

    # orders

    def _submit(self, req: dict) -> dict:
        now = _iso(pd.Timestamp.now(tz="UTC"))
        if self._reject:
            raise _error(422, self._reject.pop(0), 40310000)
        cid = req.get("client_order_id") or str(uuid.uuid4())
        if any(o["client_order_id"] == cid for o in self.orders):
            raise _error(422, "client_order_id must be unique", 40010001)
        legs = req.get("legs")
        if req.get("order_class") == "mleg" and legs:
            qty = float(req["qty"])
            children = [self._new_order({**leg, "qty": _num(qty * float(leg.get("ratio_qty", 1))),
                                         "type": req.get("type", "market"),
                                         "time_in_force": req["time_in_force"]}, str(uuid.uuid4()), now)
                        for leg in legs]
            order = self._new_order({**req, "symbol": ""}, cid, now, children=children)
        else:
            if not req.get("symbol"):
                raise _error(422, "symbol is required", 40010000)
            order = self._new_order(req, cid, now)
        self.orders.append(order)
        return order

    def _new_order(self, req: dict, cid: str, now: str, children: list | None = None) -> dict:
        sym, side = req.get("symbol", ""), req.get("side")
        if children is None:
            if side not in ("buy", "sell"):
                raise _error(422, f"invalid side {side!r}", 40010000)
            px = self.price(sym)
            if req.get("qty") is not None:
                qty = float(req["qty"])
            elif req.get("notional") is not None:
                qty = float(req["notional"]) / px
            else:
                raise _error(422, "qty or notional is required", 40010000)
            if not qty > 0:
                raise _error(422, "qty must be > 0", 40010000)
            limit = req.get("limit_price")
            marketable = limit is None or (float(limit) >= px if side == "buy" else float(limit) <= px)
            filled = {"full": qty, "partial": qty / 2.0, "none": 0.0}[self.fill] if marketable else 0.0
            if filled:
                self._book_fill(sym, side, filled, px)
            status = "new" if not filled else ("filled" if filled == qty else "partially_filled")
        else:
            qty = float(req["qty"])
            filled, px = (qty if all(c["status"] == "filled" for c in children) else 0.0), None
            status = "filled" if filled else children[0]["status"]
        option = bool(OCC.match(sym))
        return {
            "id": str(uuid.uuid4()), "client_order_id": cid, "created_at": now, "updated_at": now,
            "submitted_at": now, "filled_at": now if status == "filled" else None, "expired_at": None,
            "canceled_at": None, "failed_at": None, "replaced_at": None, "replaced_by": None,
            "replaces": None, "asset_id": _sid(sym) if sym else "", "symbol": sym,
            "asset_class": ("us_option" if option else "us_equity") if sym else "",
            "notional": req.get("notional") and str(req["notional"]), "qty": _num(qty),
            "filled_qty": _num(filled), "filled_avg_price": _num(px) if filled and px is not None else None,
            "order_class": req.get("order_class") or "simple", "order_type": req.get("type", "market"),
            "type": req.get("type", "market"), "side": side or "",
            "time_in_force": req.get("time_in_force", "day"),
            "limit_price": None if req.get("limit_price") is None else _num(float(req["limit_price"])),
            "stop_price": None, "status": status, "extended_hours": bool(req.get("extended_hours", False)),
            "legs": children, "trail_percent": None, "trail_price": None, "hwm": None,
            "position_intent": req.get("position_intent"), "ratio_qty": req.get("ratio_qty")}

    def _book_fill(self, sym: str, side: str, qty: float, px: float) -> None:
        signed = qty if side == "buy" else -qty
        held = self.positions.get(sym, 0.0)
        new = held + signed
        if held == 0 or (held > 0) == (signed > 0):            # opening or adding: average the entry price
            self.avg_price[sym] = (abs(held) * self.avg_price.get(sym, px) + qty * px) / abs(new)
        elif new != 0 and (new > 0) != (held > 0):             # flipped through zero
            self.avg_price[sym] = px
        self.positions[sym] = new
        if new == 0:
            self.positions.pop(sym)
            self.avg_price.pop(sym, None)
        self.account["cash"] = _num(float(self.account["cash"]) - signed * px * self._multiplier(sym))

    def _list_orders(self, q: dict) -> list:
        status = q.get("status", "open")
        keep = {"open": lambda o: o["status"] in OPEN_STATUSES,
                "closed": lambda o: o["status"] not in OPEN_STATUSES, "all": lambda o: True}[status]
        symbols = set(q.get("symbols", "").split(",")) - {""}
        out = [o for o in self.orders if keep(o) and (not symbols or o["symbol"] in symbols)]
        if q.get("direction", "desc") == "desc":
            out = out[::-1]
        return out[:int(q.get("limit") or 50)]

    def _find(self, pred, what) -> dict:
        for o in self.orders:
            if pred(o):
                return o
        raise _error(404, f"order not found for {what}", 40410000)

    def _mark_canceled(self, order: dict) -> None:
        now = _iso(pd.Timestamp.now(tz="UTC"))
        order.update(status="canceled", canceled_at=now, updated_at=now)

    def _cancel_open(self) -> list:
        out = [o for o in self.orders if o["status"] in OPEN_STATUSES]
        for o in out:
            self._mark_canceled(o)
        return out


def daily_frame(closes, start: str = "2024-01-02", *, hour_utc: int = 5, volume: float = 1_000_000.0,
                freq: str = "B") -> pd.DataFrame:
    """A bar frame for add_bars: closes on business days from start at hour_utc (Alpaca's daily bars open
    at midnight New York time: 05:00 UTC in winter), open = previous close, high/low 1% around."""
    closes = [float(c) for c in closes]
    idx = pd.date_range(start, periods=len(closes), freq=freq, tz="UTC") + pd.Timedelta(hours=hour_utc)
    opens = [closes[0]] + closes[:-1]
    pairs = list(zip(opens, closes, strict=True))
    return pd.DataFrame({"open": opens, "high": [max(p) * 1.01 for p in pairs],
                         "low": [min(p) * 0.99 for p in pairs], "close": closes, "volume": volume,
                         "trade_count": 100.0, "vwap": closes}, index=idx)

