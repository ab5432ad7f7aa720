"""jaxtrade.live.http / errors / keys against the local fake Alpaca: limiter, retries, timeouts, typed errors,
credentials. Real alpaca-py clients, 127.0.0.1 only; clocks are fake wherever time would pass."""

import logging
import random
import time
import traceback

import pytest
import requests
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from jaxtrade.live import errors
from jaxtrade.live.http import RateLimiter, RetryPolicy, call, describe, make_clients
from jaxtrade.live.keys import Keys, load_keys
from tests.live.fake_alpaca import FakeClock, daily_frame


def _bars_request(**kw):
    day = TimeFrame(1, TimeFrameUnit.Day)
    return StockBarsRequest(symbol_or_symbols="SPY", timeframe=day, start="2024-01-01", **kw)


def _clock_call(clients, clock, retry, **kw):
    """GET /v2/clock through call() on the trading limiter, time from the fake clock."""
    return call(clients.trading.get_clock, request="GET /v2/clock", limiter=clients.trading_limiter,
                retry=retry, timeout_s=kw.pop("timeout_s", 2.0), sleep=clock.sleep, clock=clock.now, **kw)


# The rate limiter.

def test_limiter_201st_call_waits_and_refills():
    clock = FakeClock()
    lim = RateLimiter(200, clock=clock.now, sleep=clock.sleep)
    waits = [lim.acquire() for _ in range(200)]
    assert waits == [0.0] * 200 and clock.sleeps == []
    assert lim.acquire() == pytest.approx(0.3)          # one token per 60 / 200 s
    assert clock.sleeps == [pytest.approx(0.3)]
    clock.t += 60.0                                     # a minute later the bucket is full again
    assert max(lim.acquire() for _ in range(200)) == 0.0
    assert lim.acquire() == pytest.approx(0.3)


def test_limiter_counts_every_http_request_and_data_and_trading_are_apart(fake_alpaca):
    clock = FakeClock()
    keys = Keys(fake_alpaca.key_id, fake_alpaca.secret)
    clients = make_clients(keys, url_override=fake_alpaca.url, per_minute=5, clock=clock.now,
                           sleep=clock.sleep)
    fake_alpaca.add_bars("SPY", "1Day", daily_frame(range(100, 106)))
    fake_alpaca.page_size = 2                           # 6 bars: one get_stock_bars call = 3 HTTP requests
    req = _bars_request()
    clients.data(lambda: clients.stock.get_stock_bars(req), request="GET /v2/stocks/bars")
    clients.data(lambda: clients.stock.get_stock_bars(req), request="GET /v2/stocks/bars")
    assert len(fake_alpaca.requests_to("/v2/stocks/bars")) == 6
    assert clock.sleeps == [pytest.approx(12.0)]        # the 6th request of 5/min waits 60 / 5 s
    for _ in range(5):                                  # the trading bucket is still full
        _clock_call(clients, clock, RetryPolicy(max_tries=1))
    assert len(clock.sleeps) == 1
    _clock_call(clients, clock, RetryPolicy(max_tries=1))
    assert clock.sleeps[1] == pytest.approx(12.0)


# Retries, backoff, bounds.

def test_backoff_is_exponential_capped_and_fully_jittered():
    policy = RetryPolicy(max_tries=6, base_s=0.5, cap_s=2.0, jitter=False)
    assert [policy.backoff(k, random.Random(0)) for k in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    jittered = RetryPolicy(max_tries=6, base_s=0.5, cap_s=2.0)
    rng, ref = random.Random(7), random.Random(7)
    got = [jittered.backoff(k, rng) for k in range(5)]
    assert got == [ref.uniform(0.0, c) for c in (0.5, 1.0, 2.0, 2.0, 2.0)]


def test_500_retried_with_jittered_waits_then_server_error(fake_alpaca, alpaca_clients):
    fake_alpaca.fail("/v2/clock", 500, times=10)
    clock = FakeClock()
    policy = RetryPolicy(max_tries=4, base_s=1.0, cap_s=3.0, total_s=100.0)
    with pytest.raises(errors.ServerError) as e:
        _clock_call(alpaca_clients, clock, policy, rng=random.Random(3))
    assert len(fake_alpaca.requests_to("/v2/clock")) == 4          # ours only: alpaca-py's retries are off
    ref = random.Random(3)
    assert clock.sleeps == [ref.uniform(0, c) for c in (1.0, 2.0, 3.0)]
    assert e.value.status == 500 and "GET /v2/clock" in str(e.value) and "after 4 tries" in str(e.value)


def test_500_then_success_returns_the_result(fake_alpaca, alpaca_clients):
    fake_alpaca.fail("/v2/clock", 500, times=1)
    clock = FakeClock()
    got = _clock_call(alpaca_clients, clock, RetryPolicy(max_tries=3, base_s=0.1, jitter=False))
    assert got.is_open is True and len(fake_alpaca.requests_to("/v2/clock")) == 2
    assert clock.sleeps == [0.1]


def test_retries_stop_at_total_s(fake_alpaca, alpaca_clients):
    fake_alpaca.fail("/v2/clock", 503, times=50)
    clock = FakeClock()
    policy = RetryPolicy(max_tries=50, base_s=1.0, cap_s=1.0, total_s=3.5, jitter=False)
    with pytest.raises(errors.ServerError, match="after 4 tries"):
        _clock_call(alpaca_clients, clock, policy)
    # tries at t = 0, 1, 2, 3; a fourth wait would end at 4 > 3.5
    assert len(fake_alpaca.requests_to("/v2/clock")) == 4 and clock.t == 3.0


def test_429_after_retries_is_rate_limited(fake_alpaca, alpaca_clients):
    fake_alpaca.fail("/v2/account", 429, times=10)
    with pytest.raises(errors.RateLimited) as e:
        alpaca_clients.trade(alpaca_clients.trading.get_account, request="GET /v2/account")
    assert len(fake_alpaca.requests_to("/v2/account")) == alpaca_clients.retry.max_tries == 3
    assert e.value.status == 429 and str(e.value).startswith("GET /v2/account: HTTP 429")


# Errors that are never retried.

def test_401_is_auth_error_naming_the_request_not_retried(fake_alpaca):
    bad = make_clients(Keys("PKWRONG", "wrong-secret"), url_override=fake_alpaca.url, timeout_s=2.0)
    req = _bars_request()
    name = describe("GET", "/v2/stocks/bars", {"symbols": "SPY", "timeframe": "1Day"})
    with pytest.raises(errors.AuthError) as e:
        bad.data(lambda: bad.stock.get_stock_bars(req), request=name)
    msg = str(e.value)
    assert msg.startswith("GET /v2/stocks/bars symbols=SPY timeframe=1Day: HTTP 401")
    assert "check the key pair; paper and live keys differ; data and trading use the same pair" in msg
    assert len(fake_alpaca.requests) == 1 and e.value.status == 401


def test_403_is_permission_error(fake_alpaca, alpaca_clients):
    sip = "subscription does not permit querying recent SIP data"
    fake_alpaca.fail("/v2/stocks/bars", 403, body={"code": 40310000, "message": sip})
    req = _bars_request(feed="sip")
    with pytest.raises(errors.PermissionError) as e:
        alpaca_clients.data(lambda: alpaca_clients.stock.get_stock_bars(req),
                            request="GET /v2/stocks/bars feed=sip")
    assert isinstance(e.value, PermissionError)                       # also the builtin
    assert sip in str(e.value) and "feed=sip" in str(e.value)
    assert len(fake_alpaca.requests) == 1


def test_422_is_order_rejected_echoing_the_order(fake_alpaca, alpaca_clients):
    fake_alpaca.add_bars("SPY", "1Day", daily_frame([100.0, 101.0]))
    fake_alpaca.reject_next_order("insufficient buying power")
    order = MarketOrderRequest(symbol="SPY", qty=7, side=OrderSide.BUY, time_in_force=TimeInForce.DAY,
                               client_order_id="jt-1")
    sent = order.to_request_fields()
    with pytest.raises(errors.OrderRejected) as e:
        alpaca_clients.trade(lambda: alpaca_clients.trading.submit_order(order), request="POST /v2/orders",
                             order=sent)
    assert e.value.order == sent and e.value.status == 422
    assert "insufficient buying power" in str(e.value) and "'client_order_id': 'jt-1'" in str(e.value)
    assert len(fake_alpaca.requests_to("/v2/orders", "POST")) == 1 and fake_alpaca.orders == []


def test_timeout_bounded_tries_and_time(fake_alpaca, alpaca_clients):
    fake_alpaca.delay("/v2/clock", 5.0, times=10)
    t0 = time.monotonic()
    with pytest.raises(errors.RequestTimeout, match="timeout_s=0.1 s .after 2 tries") as e:
        call(alpaca_clients.trading.get_clock, request="GET /v2/clock", timeout_s=0.1,
             limiter=alpaca_clients.trading_limiter, retry=RetryPolicy(max_tries=2, base_s=0.01))
    assert time.monotonic() - t0 < 1.5 and e.value.status is None
    assert len(fake_alpaca.requests_to("/v2/clock")) == 2


def test_every_request_has_a_timeout_even_outside_call(fake_alpaca):
    clients = make_clients(Keys(fake_alpaca.key_id, fake_alpaca.secret), url_override=fake_alpaca.url,
                           timeout_s=0.1)
    fake_alpaca.delay("/v2/account", 5.0)
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        clients.trading.get_account()
    assert time.monotonic() - t0 < 1.5


def test_refused_connection_is_retried_then_connection_failed(fake_alpaca):
    url = fake_alpaca.url
    fake_alpaca.stop()                                  # nothing listens on that port now
    clients = make_clients(Keys("PKX", "sx"), url_override=url, timeout_s=1.0)
    clock = FakeClock()
    with pytest.raises(errors.ConnectionFailed, match="^GET /v2/clock: connection failed .after 3 tries"):
        _clock_call(clients, clock, RetryPolicy(max_tries=3, base_s=0.5, jitter=False))
    assert clock.sleeps == [0.5, 1.0]


def test_malformed_json_and_missing_fields_are_malformed_response(fake_alpaca, alpaca_clients):
    fake_alpaca.malformed("/v2/stocks/bars")
    req = _bars_request()
    with pytest.raises(errors.MalformedResponse, match="^GET /v2/stocks/bars: the body is not JSON"):
        alpaca_clients.data(lambda: alpaca_clients.stock.get_stock_bars(req), request="GET /v2/stocks/bars")
    assert len(fake_alpaca.requests) == 1                              # never retried
    fake_alpaca.fail("/v2/account", 200, body={"cash": "1"})         # valid JSON, not an account
    with pytest.raises(errors.MalformedResponse, match="fields alpaca-py expects"):
        alpaca_clients.trade(alpaca_clients.trading.get_account, request="GET /v2/account")


def test_other_exceptions_pass_through_untouched(alpaca_clients):
    def boom():
        raise KeyError("ours")

    with pytest.raises(KeyError, match="ours"):
        alpaca_clients.trade(boom, request="GET /v2/nothing")


# Credentials.

def test_keys_never_in_messages_logs_or_reprs(fake_alpaca, alpaca_clients, caplog):
    caplog.set_level(logging.DEBUG)
    fake_alpaca.fail("/v2/clock", 500, times=5)
    fake_alpaca.delay("/v2/account", 5.0, times=2)
    fake_alpaca.malformed("/v2/stocks/bars")
    req = _bars_request()
    texts = [repr(alpaca_clients), repr(Keys(fake_alpaca.key_id, fake_alpaca.secret)),
             str(Keys(fake_alpaca.key_id, fake_alpaca.secret))]
    c = alpaca_clients
    attempts = [lambda: c.trade(c.trading.get_clock, request="GET /v2/clock"),
                lambda: call(c.trading.get_account, request="GET /v2/account", timeout_s=0.05,
                             limiter=c.trading_limiter, retry=RetryPolicy(max_tries=2, base_s=0.0)),
                lambda: c.data(lambda: c.stock.get_stock_bars(req), request="GET bars")]
    bad = make_clients(Keys(fake_alpaca.key_id + "x", fake_alpaca.secret + "x"), url_override=fake_alpaca.url,
                       timeout_s=2.0)
    attempts.append(lambda: bad.trade(bad.trading.get_account, request="GET /v2/account"))
    for attempt in attempts:
        try:
            attempt()
        except errors.AlpacaError as e:
            texts += [str(e), repr(e), "".join(traceback.format_exception(e))]
    texts.append(caplog.text)
    assert len(texts) == 3 + 4 * 3 + 1 and "retrying" in caplog.text
    for text in texts:
        assert fake_alpaca.key_id not in text and fake_alpaca.secret not in text


def test_describe_drops_credentials_and_formats_values():
    params = {"symbols": ["SPY", "QQQ"], "timeframe": TimeFrame(15, TimeFrameUnit.Minute), "apiKey": "PK1",
              "secret_key": "s", "page_token": "abc", "end": None}
    got = describe("get", "/v2/stocks/bars", params)
    assert got == "GET /v2/stocks/bars symbols=SPY,QQQ timeframe=15Min"


def test_load_keys_env_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("# keys\nexport APCA_API_KEY_ID='PKFILE'\nAPCA_API_SECRET_KEY=\"file-secret\"\n")
    assert vars(load_keys(env={}, dotenv_path=dotenv)) == {"key_id": "PKFILE", "secret": "file-secret"}
    keys = load_keys(env={"APCA_API_KEY_ID": "PKENV"}, dotenv_path=dotenv)
    assert (keys.key_id, keys.secret) == ("PKENV", "file-secret")
    assert repr(keys) == "Keys(key_id=<hidden>, secret=<hidden>)"


def test_load_keys_missing_names_the_variables_only(tmp_path):
    with pytest.raises(ValueError) as e:
        load_keys(env={"APCA_API_KEY_ID": "PKONLYTHEID"}, dotenv_path=tmp_path / "none.env")
    msg = str(e.value)
    assert "APCA_API_SECRET_KEY not set" in msg and "PKONLYTHEID" not in msg
    with pytest.raises(ValueError, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY not set"):
        load_keys(env={}, dotenv_path=None)
