"""Fixtures for the eval tests: real bundled prices, and EnvData built from them directly (so these tests
depend on the environment contract, not on the data layer's feature pipeline)."""

import os

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from jaxtrade.data.envdata import EnvData

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "jaxtrade", "datasets",
                    "sp500_20_stocks_adjclose.csv.gz")


@pytest.fixture(scope="session")
def prices():
    return pd.read_csv(DATA, index_col=0, parse_dates=True)


def envdata_from_close(close, *, start: int, turbulence=None, threshold=np.inf) -> EnvData:
    """EnvData of closes [T, N] whose first `start` rows are history (`EnvData.start`), with zero
    features (1 per symbol, 1 market) and the given turbulence."""
    close = jnp.asarray(close, jnp.float32)
    t, n = close.shape
    zeros = jnp.zeros((t, n), jnp.float32)
    turb = jnp.zeros((t,), jnp.float32) if turbulence is None else jnp.asarray(turbulence, jnp.float32)
    return EnvData(close=close, open=close, high=close, low=close, volume=zeros,
                   features=jnp.zeros((t, n, 1), jnp.float32), market=jnp.zeros((t, 1), jnp.float32),
                   turbulence=turb, momentum=zeros, volatility=zeros, sharpe=zeros, size=zeros,
                   turbulence_threshold=jnp.asarray(threshold, jnp.float32),
                   fees=jnp.tile(jnp.asarray([27.8e-6, 0.000166, 8.30, 0.00279], jnp.float32), (t, 1)),
                   start=start)
