"""The reference layer: the reference converter bug for bug (raw -> stream), its byte-exact JSON, and the
audit of raw files against our rule."""
