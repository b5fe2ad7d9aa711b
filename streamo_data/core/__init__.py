"""The core layer: the data model (pydantic), the state-alignment rule, errors, reasons and text keys.
It imports nothing else of ours; every other layer builds on it."""
