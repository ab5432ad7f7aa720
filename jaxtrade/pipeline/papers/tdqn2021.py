"""Théate & Ernst (2021), TDQN: the protocol (in progress)."""

from __future__ import annotations

import pathlib


def run(config, workdir) -> pathlib.Path:
    raise NotImplementedError("the tdqn2021 protocol is not written yet")
