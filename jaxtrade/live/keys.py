"""Alpaca credentials: from the environment or a `.env` file, never from configs, logs or artifacts.

    keys = load_keys()            # APCA_API_KEY_ID / APCA_API_SECRET_KEY; the environment wins over .env
    repr(keys)                    # "Keys(key_id=<hidden>, secret=<hidden>)": safe to log by accident

The same pair serves market data and trading; paper and live accounts have different pairs (paper key
ids start with "PK"). A missing variable raises ValueError naming the variables, never a value.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

KEY_ID_VAR = "APCA_API_KEY_ID"
SECRET_VAR = "APCA_API_SECRET_KEY"


@dataclasses.dataclass(frozen=True, repr=False)
class Keys:
    """An Alpaca key pair. repr / str hide both halves."""

    key_id: str
    secret: str

    def __repr__(self) -> str:
        return "Keys(key_id=<hidden>, secret=<hidden>)"

    __str__ = __repr__


def read_dotenv(path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file ('export ' prefix, quotes and # comments allowed); {} if absent."""
    if path is None or not os.path.isfile(path):
        return {}
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            name, value = line.split("=", 1)
            name = name.strip().removeprefix("export ").strip()
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            elif " #" in value:
                value = value.split(" #", 1)[0].rstrip()
            out[name] = value
    return out


def load_keys(env: Mapping[str, str] = os.environ, dotenv_path=".env") -> Keys:
    """The key pair from `env` (default os.environ), else from the .env file at dotenv_path (None: skip it).

    Raises:
      ValueError naming the missing variable(s) and where they were looked for (never a value).
    """
    dotenv = read_dotenv(dotenv_path)
    found = {}
    for var in (KEY_ID_VAR, SECRET_VAR):
        value = env.get(var) or dotenv.get(var)
        if value:
            found[var] = value
    missing = [v for v in (KEY_ID_VAR, SECRET_VAR) if v not in found]
    if missing:
        where = "the environment" + (f" or {os.path.abspath(dotenv_path)}" if dotenv_path is not None else "")
        raise ValueError(f"Alpaca keys: {' and '.join(missing)} not set in {where}; export them or put "
                         f"{KEY_ID_VAR}=... and {SECRET_VAR}=... in a .env file (never in a config)")
    return Keys(found[KEY_ID_VAR], found[SECRET_VAR])
