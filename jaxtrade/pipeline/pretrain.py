"""Supervised encoder pretraining on windows of the training split, saved as an encoder artifact.

    result = pretrain.run(config, workdir)   # config: an experiment config + a `pretrain` section
    params, spec = artifact.load_encoder(result.artifact)
    # an RL run starts from it: --config.model.encoder_init=<result.artifact> [--config.ppo.frozen=encoder]

1. Inputs are exactly what the RL encoder sees: observation dicts with the env's keys and shapes,
   from the training split's EnvData only. For a sample at row t, obs["window"] is rows t-W .. t-1
   of the env's observation table (`envs.market.window_rows`, checked against the env's own reset
   observation), and every other key (the weights vector "state", ...) is the env's reset value (all
   cash). The encoder is the module the RL network builds (`models.make_encoder`), under the same
   name "encoder", so its parameter tree is the RL network's and the transplant is exact.
2. Targets at row t read rows t .. t+H of the training split only (H = `pretrain.vol_window`), per
   asset: "return" = log(close[t+1] / close[t]) (what the action at t earns), "volatility" = the
   standard deviation (ddof 0) of the log returns of rows t+1 .. t+H, and "volume" =
   log(1 + volume[t+1]) where the data have volume. Samples are rows t = start .. T-1-H (T: the
   split's rows): a sample whose target rows would run past the split's last row is dropped.
3. Chronological validation: the last `val_fraction` of the samples validate; the H samples before
   them are dropped, so no training target row is a validation target row. Targets are standardized
   per target and asset with the mean and std of the training samples only.
4. Model: the encoder, then one linear head per target ([H] -> [N assets]); loss = the sum over
   targets of their MSE (standardized units); Adam with a global-norm clip; shuffled minibatches of
   the training samples (an epoch is one pass, the remainder dropped); the validation loss before
   training (epoch 0) and after every epoch; early stopping after `patience` epochs without a lower
   validation loss; the best-validation params are the result.
5. Metrics of a set of windows (`window_metrics`): val_loss and val_loss_<target>; val_loss_baseline,
   the loss of predicting each target's training mean; val_r2 (1 - MSE / variance of the standardized
   targets, averaged over targets) and val_r2_<target>; directional_accuracy (sign of the predicted vs
   the realized next-bar return, over every asset; bars with a zero return left out),
   majority_accuracy (the share of the more common sign among those same moved bars: what "always up"
   or "always down" scores) and directional_accuracy_edge = directional_accuracy - majority_accuracy.
6. Selection vs held out: the best epoch is chosen on the validation windows, so their metrics are
   selection metrics. Where the config has a test split, the best params are also scored on the test
   split's windows (built as in steps 1-2, standardized with the training statistics; the targets read
   test rows only): held-out metrics, which no choice has seen.
7. Output: `workdir/encoder` (`artifact.save_encoder`: the encoder subtree and its `EncoderSpec`, whose
   metrics are {"selection": {the best epoch's step-5 metrics, initial_val_loss, epochs, best_epoch,
   train_samples, val_samples, split="val"}, "held_out": {the step-5 metrics on test, test_samples,
   split="test"}} (held_out absent without a test split; the names keep their "val_" prefix, "split"
   says which data) and `workdir/history.json` (the per-epoch losses and validation metrics).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxtrade.agents.base import check_keys
from jaxtrade.data import fingerprint
from jaxtrade.envs import market as market_lib
from jaxtrade.envs.base import ObsSpec
from jaxtrade.models import encoder_config, make_encoder, model_config_dict
from jaxtrade.train import artifact as artifact_lib
from jaxtrade.train import setup as setup_lib
from jaxtrade.train.metrics import EarlyStopping

log = logging.getLogger("jaxtrade")


def default_config(**changes) -> ml_collections.ConfigDict:
    """The `pretrain` section, updated with `changes` (an unknown key raises, naming `pretrain.<key>`)."""
    cfg = ml_collections.ConfigDict(dict(
        epochs=50,               # at most; early stopping usually ends sooner
        batch_size=64,
        learning_rate=1e-3,
        max_grad_norm=1.0,
        patience=3,              # epochs without a lower validation loss
        val_fraction=0.2,        # the last samples of the training split (chronological)
        vol_window=20,           # rows of the realized-volatility target; also the train/val gap
    ))
    cfg.update(check_keys(changes, cfg, name="pretrain"))
    return cfg


# SAMPLES

@dataclasses.dataclass(frozen=True)
class Samples:
    """The pretraining samples of one training split (module docstring, steps 1-3).

    data: the training split's EnvData; base_obs: the env's reset observation (unbatched); obs_spec:
    the env's observation spec; window: W.
    rows: int32 [S] sample rows t, chronological; the first n_train train, the last n_val validate.
    raw: {target: float64 [S, N]} unstandardized; mean, std: {target: [N]} of the training samples;
    targets: {target: float32 [S, N]} standardized.
    """

    data: Any
    base_obs: dict
    obs_spec: ObsSpec
    window: int
    rows: np.ndarray
    n_train: int
    n_val: int
    raw: dict
    mean: dict
    std: dict
    targets: dict

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.raw)

    @property
    def train(self) -> slice:
        return slice(0, self.n_train)

    @property
    def val(self) -> slice:
        return slice(len(self.rows) - self.n_val, len(self.rows))


def raw_targets(close: np.ndarray, volume: np.ndarray | None, rows: np.ndarray, vol_window: int) -> dict:
    """{target: float64 [S, N]} for sample rows `rows` (module docstring, step 2) from close [T, N] and
    volume [T, N] (None: no volume target); every row read is <= max(rows) + vol_window."""
    log_close = np.log(np.asarray(close, np.float64))
    ret = np.diff(log_close, axis=0)                       # ret[k - 1] = log(close[k] / close[k - 1])
    future = np.stack([ret[rows + j] for j in range(vol_window)], axis=1)     # rows t+1 .. t+H: [S, H, N]
    out = {"return": ret[rows], "volatility": future.std(axis=1)}
    if volume is not None:
        out["volume"] = np.log1p(np.asarray(volume, np.float64)[rows + 1])
    return out


def chronological_split(n: int, val_fraction: float, gap: int) -> tuple[int, int]:
    """(n_train, n_val) of n chronological samples: the last round(val_fraction * n) validate, the
    `gap` before them are dropped, the rest train."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"pretrain.val_fraction must be in (0, 1), got {val_fraction}")
    n_val = max(1, int(round(val_fraction * n)))
    n_train = n - n_val - gap
    if n_train < 2:
        raise ValueError(f"the training split gives {n} pretraining samples: {n_val} validate and {gap} "
                         f"(pretrain.vol_window) are the gap, leaving {n_train} to train on; use a longer "
                         "data.train range or a smaller pretrain.val_fraction")
    return n_train, n_val


def observations(data, base_obs: dict, rows, window: int) -> dict:
    """The observations of sample rows `rows` [B]: window [B, W, D] = `market.window_rows` of each row,
    every other key the reset value broadcast to [B, ...]. Traceable."""
    windows = jax.vmap(lambda t: market_lib.window_rows(data, t, window))(rows)
    return {k: windows if k == "window" else jnp.broadcast_to(v, rows.shape + jnp.shape(v))
            for k, v in base_obs.items()}


def _split_windows(setup, split, h: int):
    """(data, base_obs, obs_spec, window, rows, raw targets) of one split (module docstring, steps
    1-2). ValueError where the env's observation window is not `market.window_rows` of its data."""
    env_cfg = setup_lib.env_config_of(setup.config)
    env, params = setup_lib.make_split_env(env_cfg, split)
    data, window = params.data, int(env_cfg["window"])
    obs, _ = env.reset(jax.random.key(0), params)        # whole-split episode: t = data.start
    base_obs = jax.tree.map(np.asarray, obs)
    if "window" not in base_obs or not np.array_equal(base_obs["window"], np.asarray(
            market_lib.window_rows(data, data.start, window))):
        raise ValueError(f"env.name={env_cfg['name']!r}: its observation window is not the market table's "
                         "rows t-W .. t-1 (jaxtrade.envs.market.window_rows), which pretraining feeds the "
                         "encoder; pretrain on a market env (portfolio, single, options)")
    obs_spec = getattr(env, "obs_spec", None) or ObsSpec.from_obs(base_obs)   # what the RL agent records
    rows = np.arange(data.start, data.n_valid_rows - h, dtype=np.int32)
    raw = raw_targets(np.asarray(data.close), np.asarray(data.volume) if data.has_volume else None, rows, h)
    return data, base_obs, obs_spec, window, rows, raw


def _vol_window(pre_cfg) -> int:
    h = int(pre_cfg.vol_window)
    if h < 2:
        raise ValueError(f"pretrain.vol_window must be >= 2 (rows of the realized volatility), got {h}")
    return h


def build_samples(setup, pre_cfg) -> Samples:
    """The samples of `setup`'s training split (module docstring, steps 1-3). ValueError where the
    env's observation window is not `market.window_rows` of its data (not a market env)."""
    h = _vol_window(pre_cfg)
    data, base_obs, obs_spec, window, rows, raw = _split_windows(setup, setup.splits.train, h)
    n_train, n_val = chronological_split(len(rows), float(pre_cfg.val_fraction), gap=h)
    mean = {k: v[:n_train].mean(axis=0) for k, v in raw.items()}
    std = {k: v[:n_train].std(axis=0) for k, v in raw.items()}
    std = {k: np.where(s > 0, s, 1.0) for k, s in std.items()}
    targets = {k: ((v - mean[k]) / std[k]).astype(np.float32) for k, v in raw.items()}
    return Samples(data, base_obs, obs_spec, window, rows, n_train, n_val, raw, mean, std, targets)


def held_out_samples(setup, samples: Samples, pre_cfg) -> Samples | None:
    """The windows of `setup`'s test split (module docstring, step 6), standardized with the training
    statistics of `samples`, all of them in the `val` slice (n_train = 0); None without a test split."""
    if setup.splits.test is None:
        return None
    h = _vol_window(pre_cfg)
    data, base_obs, _, window, rows, raw = _split_windows(setup, setup.splits.test, h)
    if len(rows) == 0:
        raise ValueError(f"the test split {setup.splits.test} has no pretraining window: its rows end within "
                         f"pretrain.vol_window={h} rows of its first traded row; lengthen data.test or "
                         "unset it (no held-out metrics)")
    targets = {k: ((v - samples.mean[k]) / samples.std[k]).astype(np.float32) for k, v in raw.items()}
    return Samples(data, base_obs, samples.obs_spec, window, rows, 0, len(rows), raw, samples.mean,
                   samples.std, targets)


# MODEL

class PretrainNet(nn.Module):
    """`encoder` (the RL network's encoder module, named "encoder") -> one Dense head per target."""

    encoder: nn.Module
    heads: tuple[tuple[str, int], ...]      # (target, outputs = assets)

    @nn.compact
    def __call__(self, obs, *, train: bool = False) -> dict:
        x = self.encoder(obs, train=train).astype(jnp.float32)
        return {name: nn.Dense(n, name=f"head_{name}")(x) for name, n in self.heads}


def make_net(model_config, samples: Samples) -> PretrainNet:
    """The encoder of `model_config` (`models.make_encoder`) with a head per target of `samples`."""
    n_assets = int(samples.data.n_assets)
    return PretrainNet(make_encoder(model_config), tuple((k, n_assets) for k in samples.names))


def _mse(pred: dict, y: dict) -> dict:
    return {k: jnp.mean(jnp.square(pred[k] - y[k])) for k in y}


@dataclasses.dataclass
class PretrainResult:
    artifact: str
    metrics: dict                # {"selection": {...}, "held_out": {...}}: the artifact's (docstring, step 7)
    history: list[dict]
    params: dict                 # the best-validation params of the whole net (encoder + heads)


def _make_fns(net, tx, samples: Samples):
    window = samples.window

    def loss(params, data, base_obs, rows, y, key):
        pred = net.apply({"params": params}, observations(data, base_obs, rows, window), train=True,
                         rngs={"dropout": key})
        return sum(_mse(pred, y).values())

    def epoch(params, opt_state, data, base_obs, rows, y, key):
        """One pass over minibatches rows [n_b, B], y leaves [n_b, B, N]."""
        def step(carry, batch):
            params, opt_state = carry
            rows_b, y_b, key_b = batch
            total, grads = jax.value_and_grad(loss)(params, data, base_obs, rows_b, y_b, key_b)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), total

        keys = jax.random.split(key, rows.shape[0])
        (params, opt_state), totals = jax.lax.scan(step, (params, opt_state), (rows, y, keys))
        return params, opt_state, totals.mean()

    def predict(params, data, base_obs, rows):
        return net.apply({"params": params}, observations(data, base_obs, rows, window))

    return jax.jit(epoch), jax.jit(predict)


def window_metrics(pred: dict, samples: Samples) -> dict:
    """Losses, R^2 and directional accuracy (with the majority-class accuracy it must beat) of
    standardized predictions {target: [n_val, N]} of the windows `samples.val` (module docstring, step 5)."""
    val = samples.val
    out = {}
    for k in samples.names:
        p, y = np.asarray(pred[k], np.float64), samples.targets[k][val].astype(np.float64)
        out[f"val_loss_{k}"] = float(np.mean((p - y) ** 2))
        out[f"val_r2_{k}"] = float(1.0 - np.sum((p - y) ** 2) / np.sum((y - y.mean(axis=0)) ** 2))
    out["val_loss"] = float(sum(out[f"val_loss_{k}"] for k in samples.names))
    # Predicting each target's training mean (0 in standardized units): the loss to beat.
    out["val_loss_baseline"] = float(sum(np.mean(samples.targets[k][val].astype(np.float64) ** 2)
                                         for k in samples.names))
    out["val_r2"] = float(np.mean([out[f"val_r2_{k}"] for k in samples.names]))
    predicted = np.asarray(pred["return"], np.float64) * samples.std["return"] + samples.mean["return"]
    realized = samples.raw["return"][val]
    moved = realized != 0                                  # a flat bar has no direction to get right
    out["directional_accuracy"] = float(np.mean(np.sign(predicted[moved]) == np.sign(realized[moved])))
    up = float(np.mean(realized[moved] > 0))
    out["majority_accuracy"] = max(up, 1.0 - up)           # "always up" (or "always down") on these bars
    out["directional_accuracy_edge"] = out["directional_accuracy"] - out["majority_accuracy"]
    return out


def fit(samples: Samples, model_config, pre_cfg, *, seed: int = 0) -> tuple[dict, dict, list[dict]]:
    """Trains the encoder + heads on `samples` (module docstring, step 4).
    -> (best-validation params, their validation metrics, history rows per epoch)."""
    net = make_net(model_config, samples)
    batch = int(pre_cfg.batch_size)
    if not 1 <= batch <= samples.n_train:
        raise ValueError(f"pretrain.batch_size={batch} must be in [1, {samples.n_train}] (the training "
                         "samples)")
    init_key, shuffle_key, dropout_key = jax.random.split(jax.random.key(seed), 3)
    rows_dev = jnp.asarray(samples.rows)
    base_obs = jax.tree.map(jnp.asarray, samples.base_obs)
    params = net.init(init_key, observations(samples.data, base_obs, rows_dev[:1], samples.window))["params"]
    tx = optax.chain(optax.clip_by_global_norm(float(pre_cfg.max_grad_norm)),
                     optax.adam(float(pre_cfg.learning_rate)))
    opt_state = tx.init(params)
    epoch_fn, predict = _make_fns(net, tx, samples)
    val_rows = rows_dev[samples.val]
    y_all = {k: jnp.asarray(v) for k, v in samples.targets.items()}

    def validate(p):
        return window_metrics(jax.device_get(predict(p, samples.data, base_obs, val_rows)), samples)

    best_params, best, best_epoch = params, validate(params), 0
    history = [dict(epoch=0, train_loss=None, **{k: v for k, v in best.items()})]
    log.info("pretrain epoch 0: val loss %.4f (before training)", best["val_loss"])
    early = EarlyStopping(int(pre_cfg.patience), 0.0)
    early.update(-best["val_loss"])
    n_b = samples.n_train // batch
    for epoch in range(1, int(pre_cfg.epochs) + 1):
        order = jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), samples.n_train)[:n_b * batch]
        idx = order.reshape(n_b, batch)
        params, opt_state, train_loss = epoch_fn(params, opt_state, samples.data, base_obs, rows_dev[idx],
                                                 {k: v[idx] for k, v in y_all.items()},
                                                 jax.random.fold_in(dropout_key, epoch))
        val = validate(params)
        history.append(dict(epoch=epoch, train_loss=float(train_loss), **val))
        log.info("pretrain epoch %d: train loss %.4f, val loss %.4f (R^2 %.3f, direction %.3f)", epoch,
                 float(train_loss), val["val_loss"], val["val_r2"], val["directional_accuracy"])
        if not math.isfinite(val["val_loss"]):
            raise FloatingPointError(f"pretrain epoch {epoch}: the validation loss is {val['val_loss']}; "
                                     "lower pretrain.learning_rate")
        if val["val_loss"] < best["val_loss"]:
            best_params, best, best_epoch = params, val, epoch
        if early.update(-val["val_loss"]):
            log.info("pretrain: early stopping after epoch %d (no lower validation loss for %d epochs)",
                     epoch, early.patience)
            break
    return best_params, dict(best, best_epoch=best_epoch, epochs=len(history) - 1), history


def score(params, samples: Samples, model_config) -> dict:
    """`window_metrics` of `params` (the whole net's) on the windows `samples.val`."""
    net, window = make_net(model_config, samples), samples.window
    predict = jax.jit(lambda p, data, base_obs, rows: net.apply(
        {"params": p}, observations(data, base_obs, rows, window)))
    pred = predict(params, samples.data, jax.tree.map(jnp.asarray, samples.base_obs),
                   jnp.asarray(samples.rows[samples.val]))
    return window_metrics(jax.device_get(pred), samples)


def run(config, workdir: str, *, market=None) -> PretrainResult:
    """Pretrains `config.model`'s encoder on `config`'s training split into `workdir/encoder` (module
    docstring). market: the MarketData to use instead of loading `config.data`."""
    config = ml_collections.ConfigDict(config.to_dict())
    pre_cfg = default_config(**dict(config.get("pretrain", {})))
    setup = setup_lib.build(config, market=market)
    samples = build_samples(setup, pre_cfg)
    test = held_out_samples(setup, samples, pre_cfg)
    log.info("pretrain: %s encoder on %s, %d training and %d validation samples (%s, window %d)",
             config.model.encoder, setup.splits.train, samples.n_train, samples.n_val,
             ", ".join(samples.names), samples.window)
    params, selection, history = fit(samples, config.model, pre_cfg, seed=int(config.seed))
    metrics = {artifact_lib.SELECTION: dict(selection, initial_val_loss=history[0]["val_loss"],
                                            train_samples=samples.n_train, val_samples=samples.n_val,
                                            split="val")}
    if test is not None:
        held_out = score(params, test, config.model)
        metrics[artifact_lib.HELD_OUT] = dict(held_out, test_samples=test.n_val, split="test")
        log.info("pretrain: held out on %s (%d windows): loss %.4f (R^2 %.3f, direction %.3f vs %.3f for "
                 "the majority sign)", setup.splits.test, test.n_val, held_out["val_loss"],
                 held_out["val_r2"], held_out["directional_accuracy"], held_out["majority_accuracy"])
    model = artifact_lib.as_plain(model_config_dict(config.model))
    env_cfg = setup_lib.env_config_of(config)
    spec = artifact_lib.EncoderSpec(
        encoder=encoder_config(model), model=model, obs_spec=samples.obs_spec,
        env=artifact_lib.as_plain(env_cfg), data=artifact_lib.as_plain(config.data),
        preprocessor=setup.preprocessor, data_fingerprint=fingerprint(setup.market), targets=samples.names,
        code_version=artifact_lib.code_version(), versions=artifact_lib.library_versions(),
        machine=artifact_lib.machine_info(), metrics=metrics, seed=int(config.seed))
    os.makedirs(workdir, exist_ok=True)
    path = artifact_lib.save_encoder(os.path.join(workdir, "encoder"), params["encoder"], spec)
    with open(os.path.join(workdir, "history.json"), "w", encoding="utf-8") as f:
        json.dump(artifact_lib.as_plain(history), f, indent=1, allow_nan=False)
    return PretrainResult(path, metrics, history, params)
