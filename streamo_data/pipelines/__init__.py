"""The pipelines layer: the mixture build from a declarative config (one module per step), and the demo."""
