"""The training engine: TrainState, one fit/evaluate loop, data parallelism, checkpoints."""
