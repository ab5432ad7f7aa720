"""The host loop: `train(config, workdir)`; checkpoints, metrics, logging, signals."""

__all__ = ["train", "TrainResult", "TrainingDiverged"]


def __getattr__(name):  # the loop imports every other room; its small pieces need none of them
    if name in __all__:
        from jaxtrade.train import loop

        return getattr(loop, name)
    raise AttributeError(name)
