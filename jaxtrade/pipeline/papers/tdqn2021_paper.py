"""The published numbers of Théate & Ernst, "An Application of Deep Reinforcement Learning to Algorithmic
Trading", as printed in arXiv 2004.06627v3 (9 Oct 2020; read from a text conversion of that PDF). The
journal version (Expert Systems with Applications 173, 114632) was not available here to check against.

- Table 6, "Performance assessment for the entire testbench": the (expected) Sharpe ratio of B&H, S&H,
  TF, MR and TDQN on each of the 30 instruments, test set 2018-2019.
- Tables 4 and 5 (Apple, Tesla): every indicator of B&H, S&H, TF, MR and one typical TDQN run. Used here:
  annualised return and volatility, profitability ratio and max drawdown, converted from percent to
  fractions (max drawdown as a negative fraction, our sign). Their TDQN Sharpe there (1.484, 0.261) is the
  typical run's; the TDQN Sharpe given in our table is Table 6's expected one (1.424, 0.621).

`PUBLISHED[(symbol, strategy)] = {metric key: value}`; strategy "TDQN" is the paper's agent. Anything not
printed in those tables is absent (an empty cell), never estimated.
"""

from __future__ import annotations

STRATEGIES = ("B&H", "S&H", "TF", "MR", "TDQN")

# Table 6: Sharpe ratio, B&H, S&H, TF, MR, TDQN.
_TABLE6 = {
    "DIA": (0.684, -0.636, -0.325, -0.214, 0.684),
    "SPY": (0.834, -0.833, -0.309, -0.376, 0.834),
    "QQQ": (0.845, -0.806, 0.264, 0.060, 0.845),
    "EZU": (0.088, 0.026, -0.404, -0.030, 0.103),
    "EWJ": (0.128, -0.025, -1.649, 0.418, 0.019),
    "GOOGL": (0.570, -0.370, 0.125, 0.555, 0.227),
    "AAPL": (1.239, -1.593, 1.178, -0.609, 1.424),
    "FB": (0.371, -0.078, 0.248, -0.168, 0.151),
    "AMZN": (0.559, -0.187, 0.161, -1.193, 0.419),
    "MSFT": (1.364, -1.390, -0.041, -0.416, 0.987),
    "TWTR": (0.189, 0.314, -0.271, -0.422, 0.238),
    "NOK": (-0.408, 0.565, 1.088, 1.314, -0.094),
    "PHIA.AS": (1.062, -0.672, -0.167, -0.599, 0.675),
    "SIE.DE": (0.399, -0.265, 0.525, 0.526, 0.426),
    "BIDU": (-0.699, 0.866, -1.209, 0.167, 0.080),
    "BABA": (0.357, -0.139, -0.068, 0.293, 0.021),
    "0700.HK": (-0.013, 0.309, 0.179, -0.466, -0.198),
    "6758.T": (0.794, -0.655, -0.352, 0.415, 0.424),
    "JPM": (0.713, -0.743, -1.325, -0.004, 0.722),
    "HSBC": (-0.518, 0.725, -1.061, 0.447, 0.011),
    "0939.HK": (0.026, 0.165, -1.163, -0.388, 0.202),
    "XOM": (0.055, 0.132, -0.386, -0.673, 0.098),
    "RDSA.AS": (0.488, -0.238, -0.043, 0.742, 0.425),
    "PTR": (-0.376, 0.514, -0.821, -0.238, 0.156),
    "TSLA": (0.508, -0.154, -0.987, 0.358, 0.621),
    "VOW3.DE": (0.384, -0.208, -0.361, 0.601, 0.216),
    "7203.T": (0.352, -0.242, -1.108, -0.378, 0.304),
    "KO": (1.031, -0.871, -0.236, -0.394, 1.068),
    "ABI.BR": (-0.058, 0.275, 0.036, -1.313, 0.187),
    "2503.T": (0.106, 0.156, -1.441, 0.313, 0.852),
}
TABLE6_AVERAGE = (0.369, -0.202, -0.331, -0.056, 0.404)

# Tables 4 (AAPL) and 5 (TSLA), percent as printed: annualised return, annualised volatility,
# profitability ratio, max drawdown; B&H, S&H, TF, MR, TDQN (one typical run).
_DETAIL = {
    "AAPL": {"annual_return": (28.86, -100.00, 25.97, -19.09, 32.81),
             "annual_volatility": (26.62, 44.39, 24.86, 28.33, 25.69),
             "profitability": (100, 0.00, 42.31, 56.67, 52.17),
             "max_drawdown": (38.51, 82.48, 14.89, 51.12, 17.31)},
    "TSLA": {"annual_return": (24.11, -7.38, -100.00, 19.02, 12.80),
             "annual_volatility": (53.14, 46.11, 52.70, 58.05, 52.09),
             "profitability": (100, 0.00, 34.38, 67.65, 38.18),
             "max_drawdown": (52.83, 54.09, 79.91, 65.31, 58.95)},
}
_DETAIL_KEYS = {"annual_return": "annual_return_paper_convention",
                "annual_volatility": "annual_volatility_paper_convention",
                "profitability": "profitability", "max_drawdown": "max_drawdown_paper_convention"}


def _published() -> dict:
    out = {}
    for sym, sharpes in _TABLE6.items():
        for k, strategy in enumerate(STRATEGIES):
            out[(sym, strategy)] = {"sharpe_paper_convention": sharpes[k]}
    for sym, detail in _DETAIL.items():
        for name, values in detail.items():
            for k, strategy in enumerate(STRATEGIES):
                v = values[k] / 100.0
                out[(sym, strategy)][_DETAIL_KEYS[name]] = -v if name == "max_drawdown" else v
    return out


PUBLISHED = _published()
