"""The store layer: paths on local disk or an object store, atomic writes, Parquet tables with their
`datasets` Features, the work directory's layout and a release's manifest."""
