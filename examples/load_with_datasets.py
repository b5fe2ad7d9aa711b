"""Load a release with Hugging Face `datasets`, exactly as a user would: no extra arguments.

Usage: python examples/load_with_datasets.py demo_out/release
"""

import sys
from collections import Counter

from datasets import load_dataset

release = sys.argv[1] if len(sys.argv) > 1 else "demo_out/release"
grounding = load_dataset(release, "temporal_grounding", split="train")
print(grounding)
row = grounding[0]
print("question:", row["questions"][0]["content"])
print("answer on frame", row["states"].index("response"), ":", row["answers"][row["states"].index("response")])

everything = load_dataset(release)  # all tasks, train and validation
print(everything)
print(Counter(state for states in everything["train"]["states"] for state in states))
