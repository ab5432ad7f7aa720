"""jaxtrade.live: Alpaca market data, brokers and the one-bar runner (DESIGN.md, "Live").

    from jaxtrade.live import fetch_bars, load_keys, make_clients
    clients = make_clients(load_keys(), paper=True)          # keys from the environment or .env
    md = fetch_bars(["SPY", "QQQ"], "1Day", "2024-01-01", clients=clients, cache_dir="cache")

Every request is rate-limited, timed out, retried and mapped to a typed error (`jaxtrade.live.http`,
`jaxtrade.live.errors`); bars and option chains are in `jaxtrade.live.alpaca`.
"""

from jaxtrade.live.alpaca import (
    TIMEFRAMES,
    CacheError,
    ChainInputs,
    LookAheadError,
    OptionChainSnapshot,
    Timeframe,
    bar_close_time,
    chain_inputs,
    fetch_bars,
    fetch_option_chain,
    fetch_option_contracts,
    parse_occ,
    timeframe,
)
from jaxtrade.live.errors import (
    AlpacaError,
    AuthError,
    ConnectionFailed,
    MalformedResponse,
    OrderRejected,
    PermissionError,  # noqa: A004 - the contract's name (also a builtins.PermissionError)
    RateLimited,
    RequestTimeout,
    ServerError,
)
from jaxtrade.live.http import Clients, RateLimiter, RetryPolicy, call, describe, make_clients
from jaxtrade.live.keys import Keys, load_keys

__all__ = [
    "AlpacaError", "AuthError", "CacheError", "ChainInputs", "Clients", "ConnectionFailed", "Keys",
    "LookAheadError", "MalformedResponse", "OptionChainSnapshot", "OrderRejected", "PermissionError",
    "RateLimited", "RateLimiter", "RequestTimeout", "RetryPolicy", "ServerError", "TIMEFRAMES", "Timeframe",
    "bar_close_time", "call", "chain_inputs", "describe", "fetch_bars", "fetch_option_chain",
    "fetch_option_contracts", "load_keys", "make_clients", "parse_occ", "timeframe",
]
