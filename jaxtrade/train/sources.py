"""Where every number a model carries comes from: the metric contract of an artifact's spec.

An artifact's spec.json "metrics" is {"selection": {...}, "held_out": {...}, "trials": {...}}:
selection, the metrics on the data that chose the model (validation, with its "split"); held_out,
metrics on data no choice has seen (the test split, or a walk-forward fold's test window); trials, the
overfitting summary of the trials it was chosen among (`jaxtrade.train.trials`). Only held-out metrics
grade a model (`jaxtrade.pipeline.registry`). numpy only, so the registry's command line stays light.
"""

from __future__ import annotations

import numpy as np

SELECTION, HELD_OUT, TRIALS = "selection", "held_out", "trials"


def metric_sources(metrics) -> tuple[dict, dict]:
    """(selection, held_out) metrics of a spec's "metrics" (each {} where absent).

    The form every artifact writes is {"selection": {...}, "held_out": {...}}. An artifact of an earlier
    version holds one flat dict with its "split": "val" reads as selection, "test" as held-out."""
    metrics = dict(metrics or {})
    if SELECTION in metrics or HELD_OUT in metrics:
        return dict(metrics.get(SELECTION) or {}), dict(metrics.get(HELD_OUT) or {})
    if metrics.get("split") == "test":
        return {}, metrics
    return metrics, {}


def selection_metrics(metrics: dict, **recorded) -> dict:
    """The spec "metrics" of a model chosen on validation: {"selection": metrics + recorded}."""
    return {SELECTION: dict(metrics, **recorded)}


def json_safe_tree(tree):
    """NaN/inf -> None, numpy scalars -> Python numbers, recursively."""
    if isinstance(tree, dict):
        return {str(k): json_safe_tree(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [json_safe_tree(v) for v in tree]
    if isinstance(tree, (np.floating, float)):
        v = float(tree)
        return v if np.isfinite(v) else None
    if isinstance(tree, np.integer):
        return int(tree)
    if isinstance(tree, np.bool_):
        return bool(tree)
    return tree
