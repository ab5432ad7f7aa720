"""A synthetic, fixed-shape option chain per day, priced with Black-Scholes-Merton (`pricing.py`).

    from jaxtrade.envs.options.chain import ChainConfig, build_chain, implied_vol_series, leg_quote
    cfg = ChainConfig()                                         # 5 expiries x 15 strikes x {call, put}
    iv, label = implied_vol_series(close, {"iv": vix / 100}, cfg, periods_per_year=252)
    rate = annual_rate_series(dates)                            # continuous annual risk-free rate
    chain = build_chain(close, day_numbers(dates), iv, rate, cfg)
    mid, bid, ask, greeks = leg_quote(S, K, expiry_day, day, rate_t, atm_iv_t, kind, cfg)  # any leg

Layout: for each row (day) t, `n_expiries` E expiries (default 5: 7, 14, 21, 28, 35 calendar days
after the row's date; a rolling listing, so every day has a fresh ladder at the same days to
expiry) x `n_strikes` K strikes (default 15: spot x (1 + j x 1%), j = -7 .. +7, optionally rounded
to a $ `strike_increment`; the same strikes for every expiry of a day) x {call, put} (last axis,
index `pricing.CALL` = 0, `pricing.PUT` = 1). `strike_offsets(cfg)` gives j per strike index.

Units: prices per share (x `pricing.MULTIPLIER` = 100 per contract); day = calendar day number
(days since 1970-01-01, `day_numbers`); dte in calendar days, tau = dte / 365; rates, q and iv
annual, continuously compounded; Greeks as in `pricing.py` (theta per calendar day, vega per 1.00
of sigma, rho per 1.00 of r).

No look-ahead: row t of the chain is priced at close[t], with iv[t] and rate[t], which use nothing
after t (the realized-vol estimate uses closes <= t). The env trades at row t against chain row t
(the close auction) and its observation holds chain row t-1 only.

Expiries are calendar offsets, so one can fall on a weekend or holiday (7-day steps keep the
listing row's weekday): a leg is worth `leg_quote`'s intrinsic value from its expiry_day on, and the
env settles it on the first row with day >= expiry_day.

Dividend yield (`ChainConfig.dividend_yield`, q, annual, continuous): the bundled underlying is the
S&P 500 *price* index, whose holders also receive the constituents' dividends. No dated dividend
series can be bundled under a clear license (Robert Shiller's monthly S&P dividends carry none), so q
is one stated constant, `SP500_DIVIDEND_YIELD` = 2.0% a year by default: the S&P 500's trailing
dividend yield at the year ends 2014 .. 2018 lay between about 1.8% and 2.1% (A. Damodaran, "S&P
Earnings: 1960-current", pages.stern.nyu.edu/~adamodar/New_Home_Page/datafile/spearn.html, the
"Dividend Yield" column). It prices every option (on the bundled 2014-2018 chain a 28-day
at-the-money call is 5.0% cheaper and its put 5.0% dearer than with q = 0 on average, 6.2% and 6.5%
in 2017's low volatility) and the env credits it to held shares (`envs.options.env`).
Set `env.dividend_yield` for another underlying (0 for one that pays none).

Risk-free rate (`annual_rate_series`): the Fama-French monthly one-month T-bill return as a
continuous annual rate, 12 ln(1 + RF_m); it covers 1926-07 .. 2018-11 and raises a DataError naming
the first date outside (the bundled S&P 500 / VIX data runs to 2018-12-31: pass after_last="hold"
to keep 2018-11's rate, or stop at 2018-11-30).

Implied volatility (`implied_vol_series`; one at-the-money level per day, flat in expiry):
- "vix": aux["iv"], the VIX close as a FRACTION (the source is in percent: the env builder divides
  by 100). VIX is the S&P 500's 30-day implied vol: right for the index, a proxy for anything else.
- "realized": the trailing sample standard deviation (ddof 1) of the `realized_window` log returns
  ending at row t, annualized with sqrt(periods_per_year). Rows 0 .. realized_window - 1 lack a full
  window and get NaN: the chain is NaN there and the env never trades them.
- "auto" (default): aux["iv"] where it is finite, else the realized estimate on that row (label
  "vix", "realized_<w>" or "vix+realized_<w>" says which were used).
- any other string: the aux column of that name, already a fraction.
An optional `skew` tilts the smile linearly in log-moneyness: iv(K) = iv_atm (1 + skew ln(K/S)),
clipped at >= 0.01 (a negative skew, e.g. -1, makes puts below spot dearer, as in equity markets).

Quotes (synthetic: no real option quotes exist for the bundled data):
- mid = max(BSM price, MIN_PRICE = $0.01), a minimum price tick: the chain's mid equals
  `pricing.bs_price` wherever that is >= $0.01 (deep out-of-the-money short-dated options are
  floored there, as an exchange quotes no option below one tick). Greeks are the BSM ones.
- 'spread' is the FULL bid-ask width as a fraction of mid (`spread_fraction`):
      spread = clip(0.03 + 0.05 |1 - K/S| + 0.02 (1 - volume_ratio) + 0.05 max(iv - 0.20, 0),
                    0.02, 0.10)
  i.e. 3% at the money plus 5% of the distance from spot, up to 2 points for illiquid (far, long)
  contracts and 1 point per 20 vol points above 20% implied vol; bid = mid (1 - spread / 2),
  ask = mid (1 + spread / 2), so bid < mid < ask always (spread >= 2%).
- volume proxy, contracts per day for one strike, expiry and type (`volume_proxy`):
      volume = volume_atm x volume_ratio,
      volume_ratio = exp(-|ln(K/S)| / volume_moneyness_scale - max(dte, 0) / volume_dte_scale)
  (defaults 10,000 contracts, 0.05, 30 days: volume falls by e every 5% away from spot and every
  30 days of expiry; an at-the-money 7-day contract gets 7,900 a day, a 35-day one 7% below
  spot 730).
  It is an assumption, not data: a scale for order-size slippage, not a forecast.
- expired legs (dte <= 0, `leg_quote` only): mid = bid = ask = intrinsic value (cash settlement),
  no tick floor and no spread.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from flax import struct

from jaxtrade.data.datasets import risk_free_daily
from jaxtrade.envs.options.pricing import DAYS_PER_YEAR, Greeks, bs_greeks, bs_price, intrinsic

MIN_PRICE = 0.01        # $ per share: the mid's floor (one tick)
SP500_DIVIDEND_YIELD = 0.02   # q of the bundled S&P 500 price index, 2014-2018 (module docstring)
MIN_IV = 0.01           # floor of the skewed implied vol
# spread_fraction's coefficients (fractions of mid; see the module docstring)
SPREAD_BASE = 0.03
SPREAD_MONEYNESS = 0.05
SPREAD_LIQUIDITY = 0.02
SPREAD_IV = 0.05
SPREAD_IV_PIVOT = 0.20
SPREAD_MIN = 0.02
SPREAD_MAX = 0.10
_IV_SOURCES = ("auto", "vix", "realized")
_MAX_FRACTION_IV = 3.0  # an iv column above this (300%) is read as percent and refused


@dataclasses.dataclass(frozen=True)
class ChainConfig:
    """Shape and pricing assumptions of the synthetic chain (hashable: usable as a static jit arg).

    n_expiries, expiry_step_days: expiries expiry_step_days x (1 .. n_expiries) calendar days out.
    n_strikes (odd), strike_step: strikes spot x (1 + strike_step x j), j = -(n-1)/2 .. (n-1)/2.
    strike_increment: round strikes to this many $ (None: no rounding).
    skew: iv(K) = iv_atm (1 + skew ln(K/S)), clipped >= MIN_IV.
    dividend_yield: q, annual continuous (default the S&P 500's, `SP500_DIVIDEND_YIELD`; module
      docstring); the env also pays it on held shares.
    iv_source: "auto", "vix", "realized" or the name of an aux column (module docstring).
    realized_window: rows of log returns in the realized-vol estimate.
    volume_atm, volume_moneyness_scale, volume_dte_scale: the volume proxy (module docstring).
    """

    n_expiries: int = 5
    expiry_step_days: int = 7
    n_strikes: int = 15
    strike_step: float = 0.01
    strike_increment: float | None = None
    skew: float = 0.0
    dividend_yield: float = SP500_DIVIDEND_YIELD
    iv_source: str = "auto"
    realized_window: int = 20
    volume_atm: float = 10_000.0
    volume_moneyness_scale: float = 0.05
    volume_dte_scale: float = 30.0

    def __post_init__(self):
        if self.n_expiries < 1 or self.expiry_step_days < 1:
            raise ValueError(f"need n_expiries >= 1 and expiry_step_days >= 1, got {self.n_expiries}, "
                             f"{self.expiry_step_days}")
        if self.n_strikes < 1 or self.n_strikes % 2 == 0:
            raise ValueError(f"n_strikes must be odd (at-the-money in the middle), got {self.n_strikes}")
        if not self.strike_step > 0:
            raise ValueError(f"strike_step must be > 0, got {self.strike_step}")
        if (self.n_strikes - 1) // 2 * self.strike_step >= 1.0:
            raise ValueError("the lowest strike would be <= 0: reduce n_strikes or strike_step")
        if self.strike_increment is not None and not self.strike_increment > 0:
            raise ValueError(f"strike_increment must be > 0 or None, got {self.strike_increment}")
        if not abs(self.dividend_yield) < 0.5:      # NaN fails too
            raise ValueError(f"dividend_yield is a continuous annual fraction (0.02 for 2%), got "
                             f"{self.dividend_yield}")
        if self.realized_window < 2:
            raise ValueError(f"realized_window must be >= 2, got {self.realized_window}")
        if min(self.volume_atm, self.volume_moneyness_scale, self.volume_dte_scale) <= 0:
            raise ValueError("volume_atm, volume_moneyness_scale and volume_dte_scale must be > 0")


def strike_offsets(cfg: ChainConfig) -> np.ndarray:
    """[K] int: j of each strike index (strike = spot (1 + j strike_step) before rounding); -7 .. 7."""
    h = (cfg.n_strikes - 1) // 2
    return np.arange(-h, h + 1, dtype=np.int32)


def expiry_days(cfg: ChainConfig) -> np.ndarray:
    """[E] int: calendar days to each expiry on the day it is listed; 7, 14, 21, 28, 35."""
    return cfg.expiry_step_days * np.arange(1, cfg.n_expiries + 1, dtype=np.int32)


def day_numbers(dates) -> np.ndarray:
    """[T] int32 calendar day numbers (days since 1970-01-01) of `dates` (time of day dropped)."""
    idx = pd.DatetimeIndex(dates).normalize()
    return ((idx - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)).to_numpy().astype(np.int32)


def annual_rate_series(dates, *, after_last: str = "raise") -> np.ndarray:
    """[T] float64 continuous annual risk-free rate per date, from the Fama-French monthly RF.

    r = 12 ln(1 + RF_m), RF_m the one-month T-bill return of the date's calendar month (known at the
    start of the month: causal; see `jaxtrade.data.risk_free_daily`, whose monthly rate this is).

    Raises:
      DataError ("risk-free-range", naming the first uncovered date and the covered months) for dates
      before 1926-07, or after the last published month (2018-11) unless after_last="hold" (keep the
      last known rate).
    """
    monthly = risk_free_daily(dates, periods_per_year=12.0, after_last=after_last)
    return 12.0 * np.log1p(monthly)


def _check_fraction(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    if (x[ok] < 0).any():
        raise ValueError(f"implied vol column {name!r} has negative values")
    if ok.any() and np.nanmax(x) > _MAX_FRACTION_IV:
        raise ValueError(f"implied vol column {name!r} reaches {np.nanmax(x):.3g}: it looks like percent; "
                         "pass a fraction (VIX / 100)")
    return x


def realized_vol(close, window: int, periods_per_year: float) -> np.ndarray:
    """[T] trailing annualized realized vol: std (ddof 1) of the `window` log returns ending at row t
    (rows t-window+1 .. t, each return r_s = ln(close_s / close_{s-1})), times sqrt(periods_per_year).
    Uses closes <= t only; rows 0 .. window-1 (no full window) are NaN."""
    c = np.asarray(close, dtype=np.float64)
    out = np.full(c.shape, np.nan)
    if len(c) <= window:
        return out
    lr = np.diff(np.log(c))                                    # lr[s-1] = return of row s
    win = np.lib.stride_tricks.sliding_window_view(lr, window)  # win[i] = returns of rows i+1 .. i+window
    out[window:] = win.std(axis=1, ddof=1) * np.sqrt(periods_per_year)
    return out


def implied_vol_series(close, aux: dict, cfg: ChainConfig, periods_per_year: float
                       ) -> tuple[np.ndarray, str]:
    """([T] float64 at-the-money implied vol as a fraction, label of its source); NaN = no estimate.

    close: [T] closes of the underlying. aux: extra [T] columns by name ("iv": the VIX close as a
    fraction). The sources by `cfg.iv_source` are in the module docstring.

    Raises:
      ValueError: the requested column is missing, negative, or looks like percent (> 3).
    """
    close = np.asarray(close, dtype=np.float64)
    src = cfg.iv_source
    w = cfg.realized_window
    rlabel = f"realized_{w}"
    aux = aux or {}
    if src == "realized":
        return realized_vol(close, w, periods_per_year), rlabel
    if src == "vix":
        if "iv" not in aux:
            raise ValueError("iv_source='vix' needs aux['iv'] (the VIX close as a fraction); "
                             f"aux has {sorted(aux)}")
        return _check_fraction(aux["iv"], "iv"), "vix"
    if src == "auto":
        if "iv" not in aux:
            return realized_vol(close, w, periods_per_year), rlabel
        iv = _check_fraction(aux["iv"], "iv")
        missing = ~np.isfinite(iv)
        if not missing.any():
            return iv, "vix"
        iv = np.where(missing, realized_vol(close, w, periods_per_year), iv)
        return iv, f"vix+{rlabel}"
    if src not in aux:
        raise ValueError(f"iv_source {src!r} is neither one of {_IV_SOURCES} nor an aux column; "
                         f"aux has {sorted(aux)}")
    return _check_fraction(aux[src], src), src


def skewed_iv(S, K, atm_iv, skew) -> jax.Array:
    """iv(K) = atm_iv (1 + skew ln(K/S)), clipped >= MIN_IV (NaN atm_iv stays NaN)."""
    return jnp.maximum(atm_iv * (1.0 + skew * jnp.log(K / S)), MIN_IV)


def volume_ratio(S, K, dte, cfg: ChainConfig) -> jax.Array:
    """exp(-|ln(K/S)| / volume_moneyness_scale - max(dte, 0) / volume_dte_scale), in (0, 1]."""
    return _volume_ratio(S, K, dte, cfg.volume_moneyness_scale, cfg.volume_dte_scale)


def _volume_ratio(S, K, dte, m_scale, d_scale):
    return jnp.exp(-jnp.abs(jnp.log(K / S)) / m_scale - jnp.maximum(dte, 0.0) / d_scale)


def volume_proxy(S, K, dte, cfg: ChainConfig) -> jax.Array:
    """Assumed contracts traded per day of one strike, expiry and type: volume_atm x volume_ratio."""
    return cfg.volume_atm * volume_ratio(S, K, dte, cfg)


def spread_fraction(S, K, iv, volume_ratio) -> jax.Array:
    """Full bid-ask width as a fraction of mid:
    clip(0.03 + 0.05 |1 - K/S| + 0.02 (1 - volume_ratio) + 0.05 max(iv - 0.20, 0), 0.02, 0.10),
    volume_ratio clipped to [0, 1] (see `volume_ratio`)."""
    liq = 1.0 - jnp.clip(volume_ratio, 0.0, 1.0)
    s = (SPREAD_BASE + SPREAD_MONEYNESS * jnp.abs(1.0 - K / S) + SPREAD_LIQUIDITY * liq
         + SPREAD_IV * jnp.maximum(iv - SPREAD_IV_PIVOT, 0.0))
    return jnp.clip(s, SPREAD_MIN, SPREAD_MAX)


def _quote(S, K, dte, rate, atm_iv, kind, skew, q, volume_atm, m_scale, d_scale):
    """(mid, bid, ask, greeks, iv, volume) of legs with dte calendar days left (elementwise).

    The numeric config comes in as arguments (not the static cfg) so that `build_chain` compiles
    once per chain shape whatever the skew, dividend yield or volume parameters."""
    iv = skewed_iv(S, K, atm_iv, skew)
    g = bs_greeks(S, K, dte / DAYS_PER_YEAR, rate, q, iv, kind)
    ratio = _volume_ratio(S, K, dte, m_scale, d_scale)
    live = dte > 0
    spread = jnp.where(live, spread_fraction(S, K, iv, ratio), 0.0)
    # expired: settle at intrinsic (g.price is intrinsic there too; this keeps it exact, NaN-free)
    mid = jnp.where(live, jnp.maximum(g.price, MIN_PRICE), intrinsic(S, K, kind))
    bid = mid * (1.0 - 0.5 * spread)
    ask = mid * (1.0 + 0.5 * spread)
    return mid, bid, ask, g, iv, volume_atm * ratio


def _numeric(cfg: ChainConfig) -> tuple[float, ...]:
    return (cfg.skew, cfg.dividend_yield, cfg.volume_atm, cfg.volume_moneyness_scale, cfg.volume_dte_scale)


def leg_quote(S, K, expiry_day, day, rate, atm_iv, kind, cfg: ChainConfig
              ) -> tuple[jax.Array, jax.Array, jax.Array, Greeks]:
    """(mid, bid, ask, Greeks) per share of any leg(s) (elementwise, jnp, jit-friendly; cfg static).

    S spot, K strike, expiry_day and day calendar day numbers (dte = expiry_day - day), rate the
    continuous annual risk-free rate, atm_iv the day's at-the-money implied vol (the skew is applied
    here), kind 0 call / 1 put. At the chain's grid points it returns the chain's entries (the same
    code; in float32 equal to rounding, ~1e-7 of the spot, as XLA may fuse the two programs
    differently); expired legs (dte <= 0) quote intrinsic value with no spread (module docstring).
    Returns mid, bid, ask per share and `pricing.Greeks` (its price is the unfloored BSM price).
    """
    dte = jnp.asarray(expiry_day - day)
    S = jnp.asarray(S)
    mid, bid, ask, g, _, _ = _quote(S, K, dte.astype(S.dtype), rate, atm_iv, kind, *_numeric(cfg))
    return mid, bid, ask, g


def leg_mid(S, K, expiry_day, day, rate, atm_iv, kind, cfg: ChainConfig) -> jax.Array:
    """The mid per share of any leg(s), as `leg_quote` gives it, without the Greeks, spread and
    volume (about a third of its work: what marking a book needs)."""
    dte = jnp.asarray(expiry_day - day)
    S = jnp.asarray(S)
    iv = skewed_iv(S, K, atm_iv, cfg.skew)
    price = bs_price(S, K, dte.astype(S.dtype) / DAYS_PER_YEAR, rate, cfg.dividend_yield, iv, kind)
    return jnp.where(dte > 0, jnp.maximum(price, MIN_PRICE), intrinsic(S, K, kind))


@struct.dataclass
class Chain:
    """One synthetic chain per row: T rows, E expiries, K strikes, last axis 2 = (call, put).

    day [T] int32 calendar day numbers; spot [T] close[t]; rate [T] continuous annual; atm_iv [T].
    strike [T, K] (same for every expiry); expiry_day [T, E] int32 absolute day; dte [T, E] int32.
    [T, E, K, 2]: mid, bid, ask (per share), iv (skewed), delta, gamma, theta (per calendar day),
    vega, rho, volume (proxy, contracts per day). Rows whose iv is NaN are NaN in every priced field.
    """

    day: jax.Array
    spot: jax.Array
    rate: jax.Array
    atm_iv: jax.Array
    strike: jax.Array
    expiry_day: jax.Array
    dte: jax.Array
    mid: jax.Array
    bid: jax.Array
    ask: jax.Array
    iv: jax.Array
    delta: jax.Array
    gamma: jax.Array
    theta: jax.Array
    vega: jax.Array
    rho: jax.Array
    volume: jax.Array


def chain_strikes(close, cfg: ChainConfig) -> np.ndarray:
    """[T, K] float64 strikes: close x (1 + strike_step j), rounded to strike_increment if set.

    Raises ValueError if rounding merges two strikes of a row (increment too coarse for the spot)."""
    close = np.asarray(close, dtype=np.float64)
    k = close[:, None] * (1.0 + cfg.strike_step * strike_offsets(cfg)[None, :])
    if cfg.strike_increment is not None:
        inc = float(cfg.strike_increment)
        k = np.round(k / inc) * inc
        bad = (np.diff(k, axis=1) <= 0).any(axis=1) | (k[:, 0] <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"strike_increment {inc} merges strikes on row {i} (close {close[i]:.4g}, "
                             f"strike step {cfg.strike_step * close[i]:.4g}): use a finer increment")
    return k


# build_chain prices rows in blocks of this many (the last one padded): one compile per chain shape
_BLOCK_ROWS = 256


@partial(jax.jit, static_argnames=("n_expiries", "expiry_step_days"))
def _grid(spot, day, rate, atm_iv, strike, numeric, n_expiries: int, expiry_step_days: int):
    offsets = expiry_step_days * jnp.arange(1, n_expiries + 1, dtype=jnp.int32)
    exp_day = day[:, None] + offsets[None, :]                                  # [T, E]
    dte = exp_day - day[:, None]
    kind = jnp.arange(2, dtype=jnp.int32)[None, None, None, :]                 # [1, 1, 1, 2]
    b = lambda x: x[:, None, None, None]                                       # [T] -> [T,1,1,1]
    mid, bid, ask, g, iv, vol = _quote(
        b(spot), strike[:, None, :, None], dte[:, :, None, None].astype(spot.dtype), b(rate), b(atm_iv),
        kind, *numeric)
    shape = (spot.shape[0], n_expiries, strike.shape[1], 2)
    valid = b(jnp.isfinite(atm_iv))
    nan = lambda x: jnp.where(valid, jnp.broadcast_to(x, shape), jnp.nan)
    fields = dict(mid=mid, bid=bid, ask=ask, iv=iv, delta=g.delta, gamma=g.gamma, theta=g.theta,
                  vega=g.vega, rho=g.rho, volume=vol)
    return exp_day, dte, {k: nan(v) for k, v in fields.items()}


def build_chain(close, day, iv, rate, cfg: ChainConfig = ChainConfig()) -> Chain:
    """The chain of every row (host numpy in, jnp float32 out; jitted, with `leg_quote`'s own code).

    close: [T] closes (row t priced at close[t]); day: [T] calendar day numbers (`day_numbers`);
    iv: [T] at-the-money implied vol, fraction, NaN = none (`implied_vol_series`); rate: [T]
    continuous annual risk-free rate (`annual_rate_series`).
    """
    close = np.asarray(close, dtype=np.float64)
    if close.ndim != 1 or not (np.isfinite(close) & (close > 0)).all():
        raise ValueError("close must be a [T] array of finite prices > 0")
    T = close.shape[0]
    for name, x in {"day": day, "iv": iv, "rate": rate}.items():
        if np.shape(x) != (T,):
            raise ValueError(f"{name} has shape {np.shape(x)}, expected {(T,)} like close")
    rate = np.asarray(rate, dtype=np.float64)
    if not np.isfinite(rate).all():
        raise ValueError("rate has non-finite values")
    rows = {"spot": close.astype(np.float32), "day": np.asarray(day).astype(np.int32),
            "rate": rate.astype(np.float32), "atm_iv": np.asarray(iv, dtype=np.float64).astype(np.float32),
            "strike": chain_strikes(close, cfg).astype(np.float32)}
    pad = -T % _BLOCK_ROWS
    padded = {k: np.concatenate([v, np.repeat(v[-1:], pad, axis=0)]) for k, v in rows.items()}
    numeric = tuple(np.float32(x) for x in _numeric(cfg))
    blocks = []
    for i in range(0, T + pad, _BLOCK_ROWS):
        blk = {k: v[i:i + _BLOCK_ROWS] for k, v in padded.items()}
        blocks.append(_grid(blk["spot"], blk["day"], blk["rate"], blk["atm_iv"], blk["strike"], numeric,
                            n_expiries=cfg.n_expiries, expiry_step_days=cfg.expiry_step_days))
    cat = lambda xs: jnp.concatenate(xs)[:T]
    exp_day = cat([blk[0] for blk in blocks])
    dte = cat([blk[1] for blk in blocks])
    fields = {k: cat([blk[2][k] for blk in blocks]) for k in blocks[0][2]}
    return Chain(day=jnp.asarray(rows["day"]), spot=jnp.asarray(rows["spot"]), rate=jnp.asarray(rows["rate"]),
                 atm_iv=jnp.asarray(rows["atm_iv"]), strike=jnp.asarray(rows["strike"]), expiry_day=exp_day,
                 dte=dte, **fields)
