"""The exports layer: a release out to what trainers read: the stream format, the reference's raw
layout, and extracted frames."""
