"""The release layer: writing Parquet shards, the dataset card and manifest, reading a release back, its
statistics and validation."""
