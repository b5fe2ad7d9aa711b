"""Pictures of a corpus: one sample's timeline (PNG or a self-contained HTML page) and the release card's
plots. Each module draws one kind of picture; the colours of the three states are shared (``colors``)."""
