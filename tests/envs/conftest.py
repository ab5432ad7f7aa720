"""Fixtures for the environment tests: tiny synthetic EnvData and the bundled real data."""

from __future__ import annotations

import pytest
from envs_testlib import envdata_from_close, synthetic_close

from jaxtrade.data.envdata import EnvData


@pytest.fixture(scope="session")
def tiny_data() -> EnvData:
    """96 rows (the first 8 history: EnvData.start), 4 assets, 3 features, 2 market features;
    turbulence gate off."""
    return envdata_from_close(synthetic_close(), start=8)


@pytest.fixture(scope="session")
def real_splits():
    """The bundled S&P 500 20-stock data through the data layer: train 1997-2014, test 2019-2022."""
    from jaxtrade.data import load_dataset, split

    return split(load_dataset("sp500-20"), train=("1997-01-01", "2014-12-31"),
                 val=("2015-01-01", "2018-12-31"), test=("2019-01-01", "2022-12-28"), lookback=30)


@pytest.fixture(scope="session")
def real_train(real_splits) -> EnvData:
    return real_splits.train.to_device()


@pytest.fixture(scope="session")
def real_index() -> EnvData:
    """The bundled S&P 500 index OHLCV (real volume: the volume impact model), train split to 2014."""
    from jaxtrade.data import load_dataset, split

    return split(load_dataset("sp500-ohlcv"), train=(None, "2014-12-31"), lookback=30).train.to_device()
