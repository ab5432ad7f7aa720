"""Every Alpaca call goes through `call`: our rate limiter, our retries, a timeout, typed errors.

    clients = make_clients(load_keys(), paper=True)          # alpaca-py clients, wired as below
    account = call(clients.trading.get_account, request="GET /v2/account",
                   limiter=clients.trading_limiter, retry=clients.retry, timeout_s=clients.timeout_s)

Contract:
1. Rate limit: a token bucket per API (`RateLimiter`, 200 requests per minute by default; data and
   trading each have their own, as Alpaca counts them apart). Every HTTP request an alpaca-py client
   made by `make_clients` sends takes one token, so a paginated call (three pages of bars) takes three.
   Inside `call(fn, limiter=L, timeout_s=s)` the requests of fn take L's tokens and time out after s;
   outside `call` each client uses the limiter and timeout `make_clients` installed.
2. Timeout: every request carries one (a `requests` transport adapter mounted on each client's
   session sets it when alpaca-py passes none, which it never does). It bounds the connect and each
   read wait (requests' semantics), not a whole transfer.
3. Retries: `call` re-runs fn after a 429, a 5xx, a timeout or a failed connection, up to
   `retry.max_tries` tries in all and `retry.total_s` seconds in all (a wait that would pass the total
   is not taken), sleeping min(cap_s, base_s 2^k) before try k + 2 -- times U(0, 1) with full jitter.
   alpaca-py's own retry loop is switched off (`_retry = 0`, no retry codes), so ours is the only one.
   401, 403, 422, other 4xx and malformed bodies are never retried. A paginated fn restarts from its
   first page (GETs are idempotent). A POST that timed out may have reached the server: send orders
   with a client_order_id (a second submit is then refused) or pass RetryPolicy(max_tries=1).
4. Errors: the final failure is raised as the typed error of `jaxtrade.live.errors` naming `request`
   (method, path, query; build it with `describe`, which drops anything that looks like a credential).
   Keys are never in a message, a log line or a repr.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping

import pydantic
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical.option import OptionHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.trading.client import TradingClient
from requests.adapters import HTTPAdapter

from jaxtrade.live import errors
from jaxtrade.live.keys import Keys

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
# (limiter, timeout_s) of the `call` running in this thread / context; None outside any call.
_SCOPE: contextvars.ContextVar = contextvars.ContextVar("jaxtrade_live_call", default=None)
_SECRET_WORDS = ("key", "secret", "token", "password", "auth")


class RateLimiter:
    """Token bucket: `per_minute` tokens, refilled continuously at per_minute / 60 per second, starting
    full (a burst of per_minute requests passes at once; the next waits 60 / per_minute s). Thread-safe;
    clock and sleep are injectable so tests run instantly."""

    def __init__(self, per_minute: int = 200, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if per_minute < 1:
            raise ValueError(f"per_minute must be >= 1, got {per_minute}")
        self.per_minute = int(per_minute)
        self._rate = self.per_minute / 60.0
        self._clock, self._sleep = clock, sleep
        self._tokens = float(self.per_minute)
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.per_minute), self._tokens + (now - self._last) * self._rate)
        self._last = now

    def acquire(self) -> float:
        """Take one token, sleeping until one is there; returns the seconds waited."""
        with self._lock:
            self._refill()
            wait = 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self._rate
            if wait > 0:
                self._sleep(wait)
                self._refill()
            self._tokens -= 1.0
            return wait

    def __repr__(self) -> str:
        return f"RateLimiter(per_minute={self.per_minute})"


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """max_tries tries in all (1 = no retry), waits min(cap_s, base_s 2^k) (x U(0, 1) if jitter), and no
    wait that would take the call past total_s seconds since it started."""

    max_tries: int = 5
    base_s: float = 0.5
    cap_s: float = 8.0
    total_s: float = 60.0
    jitter: bool = True

    def __post_init__(self):
        if self.max_tries < 1:
            raise ValueError(f"RetryPolicy.max_tries must be >= 1, got {self.max_tries}")
        if min(self.base_s, self.cap_s, self.total_s) < 0:
            raise ValueError("RetryPolicy.base_s, cap_s and total_s must be >= 0")

    def backoff(self, k: int, rng: random.Random) -> float:
        """The wait after the (k + 1)-th failed try."""
        cap = min(self.cap_s, self.base_s * 2.0 ** k)
        return rng.uniform(0.0, cap) if self.jitter else cap


def describe(method: str, path: str, params: Mapping | None = None) -> str:
    """'GET /v2/stocks/bars symbols=SPY timeframe=1Day': the request as errors name it. Parameters whose
    name looks like a credential (key, secret, token, password, auth) are dropped; None values too."""
    shown = []
    for k, v in (params or {}).items():
        if v is None or any(w in str(k).lower() for w in _SECRET_WORDS):
            continue
        v = getattr(v, "value", v)                       # enums and TimeFrame
        if isinstance(v, (list, tuple)):
            v = ",".join(str(getattr(x, "value", x)) for x in v)
        shown.append(f"{k}={v}")
    return " ".join([method.upper(), path, *shown])


class _Transport(HTTPAdapter):
    """Takes a limiter token and sets the timeout on every request a client's session sends."""

    def __init__(self, limiter: RateLimiter, timeout_s: float):
        super().__init__()
        self.limiter, self.timeout_s = limiter, timeout_s

    def send(self, request, **kwargs):
        scope = _SCOPE.get()
        limiter, timeout_s = scope if scope is not None else (self.limiter, self.timeout_s)
        limiter.acquire()
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = timeout_s
        return super().send(request, **kwargs)


def _wire(client, limiter: RateLimiter, timeout_s: float):
    """Our transport on the client's session; alpaca-py's retry loop off (RESTClient's attributes: with
    `_retry = 0` its `_request` makes exactly one attempt and raises APIError)."""
    transport = _Transport(limiter, timeout_s)
    client._session.mount("http://", transport)
    client._session.mount("https://", transport)
    client._retry = 0
    client._retry_codes = []
    return client


@dataclasses.dataclass(frozen=True)
class Clients:
    """The three alpaca-py clients and their limiters (data: stock + option; trading). No keys inside
    the repr: alpaca-py clients print as plain objects."""

    stock: StockHistoricalDataClient
    option: OptionHistoricalDataClient
    trading: TradingClient
    data_limiter: RateLimiter
    trading_limiter: RateLimiter
    retry: RetryPolicy = RetryPolicy()
    timeout_s: float = DEFAULT_TIMEOUT_S

    def data(self, fn, request: str, **kw):
        """call(fn) under the data limiter, this bundle's retry policy and timeout."""
        return call(fn, request=request, limiter=self.data_limiter, retry=self.retry,
                    timeout_s=self.timeout_s, **kw)

    def trade(self, fn, request: str, **kw):
        """call(fn) under the trading limiter, this bundle's retry policy and timeout."""
        return call(fn, request=request, limiter=self.trading_limiter, retry=self.retry,
                    timeout_s=self.timeout_s, **kw)


def make_clients(keys: Keys, *, paper: bool = True, url_override: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, per_minute: int = 200,
                 retry: RetryPolicy = RetryPolicy(), clock=time.monotonic, sleep=time.sleep) -> Clients:
    """alpaca-py's stock, option and trading clients on one key pair, each request rate-limited (data and
    trading limiters apart, `per_minute` each) and timed out after timeout_s; alpaca-py's retries off.

    paper: the paper trading endpoint (True) or the live one. url_override: one base URL for all three
    clients (the tests' local fake); None: Alpaca's own data and trading URLs.
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    data_limiter = RateLimiter(per_minute, clock=clock, sleep=sleep)
    trading_limiter = RateLimiter(per_minute, clock=clock, sleep=sleep)
    auth = dict(api_key=keys.key_id, secret_key=keys.secret, url_override=url_override)
    return Clients(stock=_wire(StockHistoricalDataClient(**auth), data_limiter, timeout_s),
                   option=_wire(OptionHistoricalDataClient(**auth), data_limiter, timeout_s),
                   trading=_wire(TradingClient(paper=paper, **auth), trading_limiter, timeout_s),
                   data_limiter=data_limiter, trading_limiter=trading_limiter, retry=retry,
                   timeout_s=timeout_s)


# call

def _api_detail(e: APIError) -> str:
    """Alpaca's own message from an error body ({"code": ..., "message": ...}), else the text (cut)."""
    text = str(e)
    try:
        body = json.loads(text)
        if isinstance(body, dict) and "message" in body:
            return str(body["message"])
    except ValueError:
        pass
    return text[:200] or "empty body"


def _final_error(exc: BaseException, request: str, order, tries: int, elapsed: float, timeout_s: float
                 ) -> errors.AlpacaError | None:
    """The typed error for exc, or None when exc is not an Alpaca / transport failure (re-raised as is)."""
    spent = f"after {tries} tr{'y' if tries == 1 else 'ies'} in {elapsed:.1f} s"
    if isinstance(exc, APIError):
        status = exc.status_code
        detail = _api_detail(exc)
        if status == 401:
            return errors.AuthError(request, f"{detail}: {errors.AUTH_ADVICE}", status=status)
        if status == 403:
            return errors.PermissionError(request, f"{detail}: {errors.PERMISSION_ADVICE}", status=status)
        if status == 422:
            return errors.OrderRejected(request, f"rejected: {detail}", status=status, order=order)
        if status == 429:
            return errors.RateLimited(request, f"{detail} ({spent}): too many requests; lower the rate "
                                               "(RateLimiter per_minute) or wait a minute", status=status)
        if status is not None and status >= 500:
            return errors.ServerError(request, f"{detail} ({spent}): Alpaca's server failed; try again later",
                                      status=status)
        return errors.AlpacaError(request, detail, status=status)
    if isinstance(exc, requests.exceptions.Timeout):
        return errors.RequestTimeout(request, f"no answer within timeout_s={timeout_s:g} s ({spent})")
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return errors.MalformedResponse(request, f"the body is not JSON ({exc})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return errors.ConnectionFailed(request, f"connection failed ({spent}): {type(exc).__name__}; is the "
                                                "network up and the URL right?")
    if isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        return errors.MalformedResponse(request, f"the body does not have the fields alpaca-py expects "
                                                 f"({exc.error_count()} errors; first: {first.get('loc')} "
                                                 f"{first.get('msg')})")
    if isinstance(exc, ValueError) and str(exc).startswith("The data in response"):
        return errors.MalformedResponse(request, f"the body has no data key: {exc}")
    return None


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, APIError):
        status = exc.status_code
        return status == 429 or (status is not None and status >= 500)
    return isinstance(exc, (requests.exceptions.Timeout, requests.exceptions.ConnectionError))


def call(fn: Callable[[], object], *, request: str, limiter: RateLimiter, retry: RetryPolicy,
         timeout_s: float, sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
         clock: Callable[[], float] = time.monotonic, order: dict | None = None):
    """fn() (an alpaca-py client call, no arguments) with the module's contract: every HTTP request it
    sends takes a token of `limiter` and times out after timeout_s; 429 / 5xx / timeouts / failed
    connections are retried under `retry` (waits through `sleep`, jitter from `rng`, elapsed time from
    `clock`: inject all three in tests); the final failure raises the typed error naming `request`.

    order: the order sent (a dict), echoed by OrderRejected on a 422.
    Returns fn's result.
    """
    rng = rng if rng is not None else random.Random()
    t0 = clock()
    tries = 0
    while True:
        tries += 1
        token = _SCOPE.set((limiter, timeout_s))
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - mapped below, or re-raised untouched
            elapsed = clock() - t0
            if _retryable(exc) and tries < retry.max_tries:
                wait = retry.backoff(tries - 1, rng)
                if elapsed + wait <= retry.total_s:
                    log.warning("%s: %s, try %d of %d failed; retrying in %.2f s", request, _short(exc),
                                tries, retry.max_tries, wait)
                    sleep(wait)
                    continue
            typed = _final_error(exc, request, order, tries, elapsed, timeout_s)
            if typed is None:
                raise
            raise typed from exc
        finally:
            _SCOPE.reset(token)


def _short(exc: BaseException) -> str:
    if isinstance(exc, APIError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__
