"""Fine-tuning a real vision-language model (Qwen2.5-VL / Qwen2-VL) on a release, in the reference's
conversation layout, with the focal state loss: ``tiny`` (a random-weight model built locally, for tests
and benchmarks), ``chat`` (tokens and labels of one sample), ``frames`` (its frames, decoded once),
``loop`` (the optimisation, checkpoints and resume)."""
