"""Brokers: SimBroker's fills against hand-computed costs and the env's own transition; AlpacaPaper against
the local fake Alpaca (orders as alpaca-py sends them, partial fills, rejections echoing the order, multi-leg
orders of 2-4 legs, idempotent retries by client_order_id, close all, clock and calendar). No network."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from jaxtrade import envs
from jaxtrade.data import load_dataset, split
from jaxtrade.envs import market
from jaxtrade.live import errors
from jaxtrade.live.broker import AlpacaPaper, BarMarket, Leg, OrderIntent, SimBroker
from jaxtrade.live.http import RetryPolicy, make_clients
from jaxtrade.live.keys import Keys

CASH = 100_000.0


@pytest.fixture(scope="module")
def bar():
    """A BarMarket on a sp500-20 test row: the portfolio env's params (default costs: half of a 2 bps quoted
    spread per fill, U[0, 5] bps slippage, dated SEC/FINRA fees on sells, no impact without volume) and
    fixed slippage draws."""
    md = load_dataset("sp500-20")
    s = split(md, train=("2012-01-01", "2013-12-31"), test=("2014-01-02", "2014-01-31"), lookback=3)
    _, params = envs.make("portfolio", s.test.to_device(), {"window": 3, "random_start": False})
    u = np.linspace(0.9, 0.1, len(s.test.symbols)).astype(np.float32)
    return BarMarket(s.test.dates[5], params, 5, u, s.test.symbols)


def test_simbroker_fills_at_the_close_with_the_env_costs(bar):
    sim = SimBroker(bar.symbols, CASH)
    sim.mark(bar)
    price = np.asarray(bar.params.data.close[bar.t], np.float64)
    fees = np.asarray(bar.params.data.fees[bar.t], np.float64)       # the date's SEC rate, TAF, TAF cap
    o = sim.submit(OrderIntent("AAPL", 10, "buy", "r-1-AAPL"))
    assert (o.status, o.filled_qty, o.filled_avg_price) == ("filled", 10.0, pytest.approx(price[0]))
    v = 10 * price[0]
    cash = CASH - v - (1e-4 + bar.u[0] * 5e-4) * v                  # half spread + slippage, no fees on buys
    assert sim.account().cash == pytest.approx(cash, abs=0.02)            # float32 cash: ulp 0.0078
    sim.submit(OrderIntent("AAPL", 4, "sell", "r-2-AAPL"))
    v = 4 * price[0]
    cash += v - (1e-4 + bar.u[0] * 5e-4) * v - fees[0] * v - min(fees[1] * 4, fees[2])
    assert sim.account().cash == pytest.approx(cash, abs=0.02)
    assert sim.positions() == {"AAPL": 6.0}
    assert sim.account().equity == pytest.approx(cash + 6 * price[0], abs=0.02)


def test_simbroker_books_what_the_env_transition_books(bar):
    """The same trade through the env's transition and through SimBroker: the same positions bit for bit,
    the same cash up to float32 summation order."""
    params, t, n = bar.params, bar.t, len(bar.symbols)
    state = market.book_state(jnp.zeros(n), jnp.float32(CASH), t, params, target=jnp.zeros(n),
                              initial_value=jnp.float32(CASH))
    target = jnp.full((n,), 0.9 / n, jnp.float32)
    u, keep = jnp.asarray(bar.u), jnp.asarray(False)
    shares, _, _, _ = market.trade(u, state, target, keep, params, cash_floor=True)
    new, *_ = market.transition(u, state, target, keep, params, cash_floor=True)
    sim = SimBroker(bar.symbols, CASH)
    sim.mark(bar)
    for s, q in zip(bar.symbols, np.asarray(shares), strict=True):
        sim.submit(OrderIntent(s, float(q), "buy", f"r-{s}"))
    np.testing.assert_array_equal([sim.positions()[s] for s in bar.symbols], np.asarray(new.holdings))
    assert sim.account().cash == pytest.approx(float(new.cash), abs=0.05)


def test_simbroker_refuses_what_a_broker_refuses(bar):
    sim = SimBroker(bar.symbols, 1_000.0)
    with pytest.raises(RuntimeError, match="mark"):
        sim.submit(OrderIntent("AAPL", 1, "buy", "r-0"))
    sim.mark(bar)
    with pytest.raises(errors.OrderRejected, match="insufficient buying power") as e:
        sim.submit(OrderIntent("AAPL", 1000, "buy", "r-1"))
    assert e.value.order["client_order_id"] == "r-1" and e.value.order["qty"] == 1000
    assert sim.positions() == {} and sim.account().cash == 1_000.0
    sim.submit(OrderIntent("AAPL", 1, "buy", "r-2"))
    with pytest.raises(errors.OrderRejected, match="client_order_id must be unique"):
        sim.submit(OrderIntent("AAPL", 1, "buy", "r-2"))
    with pytest.raises(ValueError, match="equity market orders only"):
        sim.submit(OrderIntent(None, 1, None, "r-3", legs=(Leg("A", 1, "buy"), Leg("B", 1, "sell"))))
    closed = sim.close_all(cancel_orders=True)
    assert [(o.symbol, o.side, o.qty) for o in closed] == [("AAPL", "sell", 1.0)] and sim.positions() == {}


# ALPACA PAPER, AGAINST THE FAKE


@pytest.fixture
def paper(fake_alpaca, alpaca_clients):
    fake_alpaca.prices.update(AAPL=190.0, MSFT=400.0)
    return AlpacaPaper(alpaca_clients, sleep=lambda s: None)


def test_submit_sends_what_alpaca_py_sends_and_reads_the_fill(paper, fake_alpaca):
    o = paper.submit(OrderIntent("AAPL", 10, "buy", "run-20240301T1600-AAPL"))
    (post,) = fake_alpaca.requests_to("/v2/orders", "POST")
    assert post["json"] == {"symbol": "AAPL", "qty": 10, "side": "buy", "type": "market",
                            "time_in_force": "day", "client_order_id": "run-20240301T1600-AAPL"}
    assert (o.client_order_id, o.status, o.filled_qty, o.filled_avg_price) == (
        "run-20240301T1600-AAPL", "filled", 10.0, 190.0)
    assert paper.positions() == {"AAPL": 10.0}
    a = paper.account()
    assert (a.cash, a.equity) == (100_000.0 - 1900.0, 100_000.0)
    assert paper.order_by_client_id("run-20240301T1600-AAPL") == o
    assert paper.order_by_client_id("nope") is None


def test_an_account_without_buying_power_is_refused_not_zero(paper, fake_alpaca):
    fake_alpaca.account["buying_power"] = None                 # JSON null: alpaca-py's Optional field
    with pytest.raises(errors.MalformedResponse, match="GET /v2/account.*no buying_power"):
        paper.account()


def test_partial_fill_is_what_the_positions_say(paper, fake_alpaca):
    fake_alpaca.fill = "partial"
    o = paper.submit(OrderIntent("MSFT", 8, "buy", "run-1-MSFT"))
    assert (o.status, o.qty, o.filled_qty) == ("partially_filled", 8.0, 4.0)
    assert paper.positions() == {"MSFT": 4.0}
    assert [x.client_order_id for x in paper.orders("open")] == ["run-1-MSFT"]
    paper.cancel(o.id)
    assert paper.orders("open") == [] and paper.orders("all")[0].status == "canceled"


def test_rejected_order_raises_with_the_order_echoed(paper, fake_alpaca):
    fake_alpaca.reject_next_order("insufficient buying power")
    with pytest.raises(errors.OrderRejected, match="insufficient buying power") as e:
        paper.submit(OrderIntent("AAPL", 1000, "buy", "run-2-AAPL"))
    assert "run-2-AAPL" in str(e.value) and e.value.order["qty"] == 1000 and e.value.status == 422
    assert len(fake_alpaca.requests_to("/v2/orders", "POST")) == 1        # a 422 is never retried
    assert fake_alpaca.orders == [] and paper.positions() == {}


@pytest.mark.parametrize("n_legs", [2, 3, 4])
def test_multi_leg_orders_are_encoded_as_alpaca_py_sends_them(paper, fake_alpaca, n_legs):
    legs = tuple(Leg(f"SPY240315{'CP'[i % 2]}00{500 + 5 * i}000", 1 + i % 2, ("buy", "sell")[i % 2])
                 for i in range(n_legs))
    for leg in legs:
        fake_alpaca.prices[leg.symbol] = 2.5
    o = paper.submit(OrderIntent(None, 3, None, f"run-mleg-{n_legs}", legs=legs))
    (post,) = fake_alpaca.requests_to("/v2/orders", "POST")
    assert post["json"] == {"qty": 3, "type": "market", "time_in_force": "day", "order_class": "mleg",
                            "client_order_id": f"run-mleg-{n_legs}",
                            "legs": [{"symbol": leg.symbol, "ratio_qty": leg.ratio_qty, "side": leg.side}
                                     for leg in legs]}
    assert o.symbol is None and o.status == "filled"
    assert paper.positions() == {leg.symbol: 3.0 * leg.ratio_qty * (1 if leg.side == "buy" else -1)
                                 for leg in legs}


def test_multi_leg_orders_outside_two_to_four_legs_are_refused_before_sending(paper, fake_alpaca):
    legs = tuple(Leg(f"SPY240315C00{500 + 5 * i}000", 1, "buy") for i in range(5))
    with pytest.raises(ValueError, match="takes 2 to 4 legs, got 5"):
        paper.submit(OrderIntent(None, 1, None, "run-5", legs=legs))
    with pytest.raises(ValueError, match="takes 2 to 4 legs, got 1"):
        paper.submit(OrderIntent(None, 1, None, "run-1", legs=legs[:1]))
    with pytest.raises(ValueError, match="its own symbol"):
        paper.submit(OrderIntent(None, 1, None, "run-d", legs=(legs[0], legs[0])))
    assert fake_alpaca.requests_to("/v2/orders") == []


def test_a_timed_out_submit_that_reached_alpaca_is_not_sent_again(fake_alpaca):
    """The POST times out but the fake accepts it after the client gave up: after the backoff the lookup by
    client_order_id finds it and nothing is sent twice. A 500 (not accepted) is looked up, not found and
    sent again; a resend that meets the first one (422, client_order_id must be unique) returns it."""
    fake_alpaca.prices["AAPL"] = 190.0
    retry = RetryPolicy(max_tries=3, base_s=0.4, cap_s=0.4, total_s=5.0, jitter=False)
    clients = make_clients(Keys(fake_alpaca.key_id, fake_alpaca.secret), url_override=fake_alpaca.url,
                           timeout_s=0.3, retry=retry)
    paper = AlpacaPaper(clients)
    fake_alpaca.delay("/v2/orders", 0.5)
    o = paper.submit(OrderIntent("AAPL", 5, "buy", "run-t-AAPL"))
    assert o.client_order_id == "run-t-AAPL" and o.filled_qty == 5.0
    assert len(fake_alpaca.requests_to("/v2/orders", "POST")) == 1 and len(fake_alpaca.orders) == 1
    paper = AlpacaPaper(clients, sleep=lambda s: None)
    fake_alpaca.fail("/v2/orders", 500, times=1)
    o = paper.submit(OrderIntent("AAPL", 2, "buy", "run-u-AAPL"))
    assert paper.submit(OrderIntent("AAPL", 2, "buy", "run-u-AAPL")) == o
    posts = [r["json"]["client_order_id"] for r in fake_alpaca.requests_to("/v2/orders", "POST")]
    assert posts == ["run-t-AAPL", "run-u-AAPL", "run-u-AAPL", "run-u-AAPL"] and len(fake_alpaca.orders) == 2
    assert paper.positions() == {"AAPL": 7.0}


def test_close_all_cancels_and_liquidates_through_delete_positions(paper, fake_alpaca):
    fake_alpaca.positions.update(AAPL=10.0, MSFT=-3.0)
    fake_alpaca.fill = "none"
    paper.submit(OrderIntent("AAPL", 1, "buy", "run-open-AAPL"))
    fake_alpaca.fill = "full"
    closed = paper.close_all(cancel_orders=True)
    (delete,) = fake_alpaca.requests_to("/v2/positions", "DELETE")
    assert delete["query"]["cancel_orders"].lower() == "true"
    assert sorted((o.symbol, o.side, o.qty) for o in closed) == [("AAPL", "sell", 10.0), ("MSFT", "buy", 3.0)]
    assert paper.positions() == {} and paper.orders("open") == []


def test_clock_and_calendar(paper, fake_alpaca):
    c = paper.clock()
    assert c.is_open and c.timestamp == pd.Timestamp("2024-03-01T20:00:00Z")
    assert c.next_close == pd.Timestamp("2024-03-01T21:00:00Z")
    fake_alpaca.calendar[-1]["close"] = "13:00"                           # an early close
    days = paper.calendar("2024-02-28", "2024-03-01")
    assert [d.date for d in days] == list(pd.to_datetime(["2024-02-28", "2024-02-29", "2024-03-01"]))
    assert days[0].open == pd.Timestamp("2024-02-28T14:30:00Z") and days[-1].close == pd.Timestamp(
        "2024-03-01T18:00:00Z")
