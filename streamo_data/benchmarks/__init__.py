"""Scoring models trained on the corpus on public streaming benchmarks, as each benchmark's authors score."""
