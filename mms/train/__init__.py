"""Training: CTC fine-tuning of the canonical wav2vec2 model (`mms train-adapter`, `mms train`).

    from mms.train import TrainOptions, train
    summary = train(TrainOptions(mode="adapter", model="mms-1b-all", lang="xyz", train=["train.jsonl"],
                                 dev=["dev.jsonl"], out="xyz-adapter"))

The engine (and torch) is imported on first use, so `mms train --help` stays light.
"""

__all__ = ["TrainError", "TrainOptions", "train"]


def __getattr__(name: str):
    if name in __all__:
        from mms.train import engine

        return getattr(engine, name)
    raise AttributeError(name)
