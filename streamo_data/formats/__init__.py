"""The formats layer: the reference implementation's raw annotation and stream formats, read and rendered
under our rule."""
