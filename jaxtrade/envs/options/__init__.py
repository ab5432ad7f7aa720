"""The options environment (issue 13): `pricing` (Black-Scholes-Merton prices and Greeks), `chain`
(the synthetic per-day chain), `strategies` (the 91-action and legacy 31-action tables and masks),
`costs` (dated per-contract fees, slippage), `env` (the environment, registered as "options")."""

from jaxtrade.envs.options import chain, costs, env, pricing, strategies

__all__ = ["chain", "costs", "env", "pricing", "strategies"]
