"""Peak memory of the focal state loss at a 150K vocabulary: p_t from the cross-entropy versus a softmax.

Usage: python bench/loss_memory.py [--tokens 1024] [--vocab 150000]

Each variant runs in a fresh process (forward and backward on logits ``[1, tokens, vocab]`` float32,
half the labels state tokens) and reports its peak resident memory (ru_maxrss) above the same process
before the logits exist; the logits themselves are included in every row. Variants: plain
cross-entropy (the floor any loss pays), `stream_focal_loss` (p_t = exp(-ce)), and the softmax
version of the reference definition. Results go to bench/results/loss_memory.json and stdout.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def measure(job: tuple[str, int, int]) -> float:
    import torch
    import torch.nn.functional as F

    from streamo_data.train.loss import stream_focal_loss
    from streamo_data.train.loss_reference import softmax_stream_focal_loss

    variant, tokens, vocab = job
    torch.set_num_threads(1)
    states = [vocab - 3, vocab - 2, vocab - 1]
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, vocab - 3, (1, tokens), generator=generator)
    labels[0, ::2] = torch.tensor(states)[torch.randint(0, 3, (tokens // 2,), generator=generator)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    logits = torch.randn(1, tokens, vocab, generator=generator).requires_grad_(True)
    if variant == "cross_entropy":
        loss = F.cross_entropy(logits[0, :-1], labels[0, 1:])
    elif variant == "stream_focal_loss":
        loss = stream_focal_loss(logits, labels, states)
    else:
        loss = softmax_stream_focal_loss(logits, labels, states)
    loss.backward()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=150_000)
    args = parser.parse_args()
    logits_mib = args.tokens * args.vocab * 4 / 2**20
    rows = []
    for variant in ("cross_entropy", "stream_focal_loss", "softmax_reference"):
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            rows.append({"variant": variant, "peak_mib": pool.apply(measure, ((variant, args.tokens, args.vocab),))})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "loss_memory.json").write_text(json.dumps({"tokens": args.tokens, "vocab": args.vocab,
                                                          "logits_mib": logits_mib, "rows": rows}, indent=2))
    floor = rows[0]["peak_mib"]
    print(f"logits [1, {args.tokens}, {args.vocab}] float32 = {logits_mib:.0f} MiB")
    print("| loss | peak memory above start | in logits-sized tensors | vs cross-entropy |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['peak_mib']:.0f} MiB | {row['peak_mib'] / logits_mib:.2f} |"
              f" {row['peak_mib'] / floor:.2f}x |")


if __name__ == "__main__":
    main()
