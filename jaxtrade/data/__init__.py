"""jaxtrade.data: load, validate, featurize and split market data; hand it to devices as `EnvData`.

    from jaxtrade.data import Preprocessor, load_dataset, split
    md = load_dataset("sp500-20")                       # MarketData, host-side numpy/pandas
    splits = split(md, train=("1995-01-01", "2014-12-31"), val=("2015-01-01", "2018-12-31"),
                   test=("2019-01-01", "2022-12-28"), lookback=30)
    env_data = splits.train.to_device()                 # EnvData of float32 jax arrays

    pre = Preprocessor.fit(md, train=("1995-01-01", "2014-12-31"), window=30)   # what split fits
    pre.save(directory); pre = Preprocessor.load(directory)                     # JSON + npz
    later = pre.transform(newer_md, ("2023-01-01", None), name="live")          # a Split

Validation rules and the fill policy: `jaxtrade.data.validate`. Features: `jaxtrade.data.features`.
What is fitted on the training split, and `fingerprint(md)`: `jaxtrade.data.preprocess`.
"""

from jaxtrade.data.datasets import (
    DatasetInfo,
    dataset_caveats,
    dataset_info,
    list_datasets,
    load_dataset,
    risk_free_daily,
)
from jaxtrade.data.envdata import EnvData
from jaxtrade.data.errors import DataError
from jaxtrade.data.features import FEATURE_NAMES, Features, NormStats, apply_norm, fit_norm, size_proxy
from jaxtrade.data.loaders import load_csv
from jaxtrade.data.market import MarketData
from jaxtrade.data.preprocess import Preprocessor, fingerprint, split
from jaxtrade.data.splits import Split, Splits

__all__ = [
    "DataError", "DatasetInfo", "EnvData", "FEATURE_NAMES", "Features", "MarketData", "NormStats",
    "Preprocessor", "Split", "Splits", "apply_norm", "dataset_caveats", "dataset_info", "fingerprint",
    "fit_norm",
    "list_datasets", "load_csv", "load_dataset", "risk_free_daily", "size_proxy", "split",
]
