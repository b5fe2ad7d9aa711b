"""The runtime layer: running a stage's items in-process or on Ray (local or a cluster by address), with
progress bars."""
