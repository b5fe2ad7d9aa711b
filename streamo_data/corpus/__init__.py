"""The corpus layer: task builders (events -> streaming samples), the train/validation split, and the
fidelity report against the paper's corpus."""
