"""Fixtures for the live tests: a local fake Alpaca (127.0.0.1, free port) and clients wired to it.

No live test touches the network: every client points at `fake_alpaca.url` through url_override.
"""

import pytest

from jaxtrade.live.http import RetryPolicy, make_clients
from jaxtrade.live.keys import Keys
from tests.live.fake_alpaca import FakeAlpaca

# Retries short enough for tests (the real default waits up to 8 s between tries).
FAST_RETRY = RetryPolicy(max_tries=3, base_s=0.001, cap_s=0.004, total_s=5.0)


@pytest.fixture
def fake_alpaca():
    """A started FakeAlpaca, stopped after the test."""
    fake = FakeAlpaca()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def alpaca_clients(fake_alpaca):
    """make_clients on the fake's key pair and URL: 2 s timeout, FAST_RETRY."""
    return make_clients(Keys(fake_alpaca.key_id, fake_alpaca.secret), url_override=fake_alpaca.url,
                        timeout_s=2.0, retry=FAST_RETRY)
