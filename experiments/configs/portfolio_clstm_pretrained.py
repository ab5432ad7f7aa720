"""`portfolio_clstm` starting from a supervised-pretrained encoder, frozen:

    python -m experiments.pretrain --workdir=runs/pretrain          # prints the encoder artifact path
    python -m experiments.train --config=experiments/configs/portfolio_clstm_pretrained.py \
        --config.model.encoder_init=runs/pretrain/encoder --workdir=runs/clstm_pretrained

`--config.ppo.frozen='()'` fine-tunes the encoder instead. The encoder must have been pretrained with
this config's model section, env and data (`pretrain_sp500` is): the run refuses it otherwise.
"""

from experiments.configs import portfolio_clstm


def get_config():
    cfg = portfolio_clstm.get_config()
    cfg.ppo.frozen = ("encoder",)
    return cfg
