"""The stages over a work directory, one module each: ingest -> annotate (offline or LLM) -> build, and
raw-to-samples (reference raw annotation -> samples). Each reads and writes the work directory's files
only (their names are in :mod:`streamo_data.store.workdir`) and can run again from its inputs."""
