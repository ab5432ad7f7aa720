"""jaxtrade.data: load, validate, featurize and split market data; hand it to devices as `EnvData`.

    from jaxtrade.data import load_dataset
    md = load_dataset("sp500-20")                       # MarketData, host-side numpy/pandas
    splits = md.split(train=("1995-01-01", "2014-12-31"), val=("2015-01-01", "2018-12-31"),
                      test=("2019-01-01", "2022-12-28"), lookback=30)
    env_data = splits.train.to_device()                 # EnvData of float32 jax arrays

Validation rules and the fill policy: `jaxtrade.data.validate`. Features: `jaxtrade.data.features`.
"""

from jaxtrade.data.datasets import DatasetInfo, dataset_info, list_datasets, load_dataset
from jaxtrade.data.envdata import EnvData
from jaxtrade.data.errors import DataError
from jaxtrade.data.features import FEATURE_NAMES, Features, NormStats, apply_norm, fit_norm, size_proxy
from jaxtrade.data.loaders import load_csv
from jaxtrade.data.market import MarketData
from jaxtrade.data.splits import Split, Splits

__all__ = [
    "DataError", "DatasetInfo", "EnvData", "FEATURE_NAMES", "Features", "MarketData", "NormStats", "Split",
    "Splits", "apply_norm", "dataset_info", "fit_norm", "list_datasets", "load_csv", "load_dataset",
    "size_proxy",
]
