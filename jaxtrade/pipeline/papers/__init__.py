"""Published protocols, one module per paper, each with `run(config, workdir) -> pathlib.Path` (the
report). `experiments/reproduce.py --paper=NAME` imports the module that `configs/papers/NAME.py`'s
`protocol` names. `common` holds what every paper's report shares (the table beside the paper's, seed
summaries, departures, the overfitting section, the determinism hash)."""
