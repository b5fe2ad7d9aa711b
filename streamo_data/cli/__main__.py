"""`python -m streamo_data.cli`: the same app as the `streamo` console script."""

from streamo_data.cli import app

app()
