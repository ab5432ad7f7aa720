"""The typed errors of every Alpaca call (`jaxtrade.live.http.call` raises them).

Each error names the request it belongs to (`.request`: method, path and query, never a key or a
secret: credentials travel in headers, which no message shows) and says what to do:

    AlpacaError            any failed call; .request, .status (HTTP status or None), .detail
      AuthError            401: the key pair is wrong for this endpoint
      PermissionError      403: the data subscription or the account does not permit it (also a
                           `builtins.PermissionError`)
      OrderRejected        422: the order (echoed in the message and in .order) was refused
      RateLimited          429 after our retries
      ServerError          5xx after our retries
      RequestTimeout       no answer within the call's timeout (after our retries)
      ConnectionFailed     the connection itself failed (refused, reset) after our retries
      MalformedResponse    a body that is not the JSON the endpoint promises (never retried)
"""

from __future__ import annotations

import builtins

AUTH_ADVICE = "check the key pair; paper and live keys differ; data and trading use the same pair"
PERMISSION_ADVICE = ("the data subscription or the account does not permit this request (feed='sip' needs "
                     "a plan that includes SIP data; option trading needs an approved options level)")


class AlpacaError(RuntimeError):
    """A failed Alpaca call. The message is "<request>: HTTP <status>: <what happened>: <what to do>";
    .detail is the part after the status."""

    def __init__(self, request: str, detail: str, *, status: int | None = None, note: str = ""):
        self.request, self.detail, self.status = request, detail, status
        code = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"{request}: {code}{detail}{note}")


class AuthError(AlpacaError):
    """401 (never retried)."""


class PermissionError(AlpacaError, builtins.PermissionError):  # noqa: A001 - the contract's name
    """403 (never retried): subscription or account permission."""


class OrderRejected(AlpacaError):
    """422 (never retried); .order is the order as it was sent (a dict) or None. .detail is Alpaca's reason
    only; the message adds the order."""

    def __init__(self, request: str, detail: str, *, status: int | None = 422, order: dict | None = None):
        self.order = order
        note = "" if order is None else f"; order sent: {order}"
        super().__init__(request, detail, status=status, note=note)


class RateLimited(AlpacaError):
    """429 after every retry."""


class ServerError(AlpacaError):
    """5xx after every retry."""


class RequestTimeout(AlpacaError):
    """The per-request timeout passed on every try."""


class ConnectionFailed(AlpacaError):
    """The connection was refused or reset on every try."""


class MalformedResponse(AlpacaError):
    """The body is not the JSON the endpoint promises."""
