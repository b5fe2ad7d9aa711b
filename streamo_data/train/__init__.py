"""Training on a release: the focal state loss, features and data, the baseline model, the loop."""
