"""streamo-data: build a Streamo-Instruct-style streaming-video instruction corpus and train a baseline."""

__version__ = "0.1.0"
