"""The focal state loss: hand-computed values, equality with the reference definition (values and
gradients, to 1e-5), the reductions to plain cross-entropy, and the per-frame variant."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from streamo_data.train.loss import alpha_from_counts, frame_focal_loss, stream_focal_loss
from streamo_data.train.loss_reference import softmax_stream_focal_loss

STATES = [3, 7, 11]  # </Silence>, </Standby>, </Response> in a toy vocabulary


def test_hand_computed_value_with_uniform_logits() -> None:
    # vocab 4, uniform logits: every p_t = 1/4, every ce = ln 4, focal factor (3/4)^2.
    vocab_states = [0, 1, 2]
    logits = torch.zeros(1, 6, 4)
    labels = torch.tensor([[-100, 0, 0, 0, 1, 3]])  # after the shift: 0, 0, 0 (silence x3), 1 (standby), 3 (text)
    # alpha (batch): 4 state tokens; silence 3 -> (4/3)/2 = 2/3, standby 1 -> (4/1)/2 = 2
    ln4, focal = math.log(4), (3 / 4) ** 2
    expected = (3 * (2 / 3) * focal * ln4 + 2 * focal * ln4 + 1 * ln4) / 5
    assert stream_focal_loss(logits, labels, vocab_states).item() == pytest.approx(expected, abs=1e-6)
    expected_no_alpha = (4 * focal * ln4 + ln4) / 5
    assert stream_focal_loss(logits, labels, vocab_states, alpha="none").item() == pytest.approx(expected_no_alpha)


def test_hand_computed_value_with_a_confident_model() -> None:
    # logits favour token 0 by ln 9 over the other (vocab 2): p(0) = 0.9
    logits = torch.tensor([[[math.log(9), 0.0], [math.log(9), 0.0], [0.0, 0.0]]])  # the last predicts nothing
    labels = torch.tensor([[-100, 0, 1]])  # frame targets 0 (p=0.9) and 1 (p=0.1), both states
    ce0, ce1 = -math.log(0.9), -math.log(0.1)
    # one of each state: alpha = (2/1)/2 = 1 for both
    expected = (0.1**2 * ce0 + 0.9**2 * ce1) / 2
    assert stream_focal_loss(logits, labels, [0, 1]).item() == pytest.approx(expected, rel=1e-6)


def random_batch(seed: int, vocab: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 17, vocab, generator=generator) * 2
    labels = torch.randint(0, vocab, (3, 17), generator=generator)
    pick = torch.rand(3, 17, generator=generator)
    labels[pick < 0.5] = STATES[0]  # silence dominates, as in the corpus
    labels[(pick >= 0.5) & (pick < 0.6)] = STATES[1]
    labels[(pick >= 0.6) & (pick < 0.65)] = STATES[2]
    labels[:, :2] = -100
    labels[1, 10:] = -100
    return logits, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("alpha", "auto_alpha"), [("batch", True), ("none", False)])
@pytest.mark.parametrize("gamma", [0.0, 2.0, 3.5])
def test_equals_the_reference_definition_values_and_gradients(seed: int, alpha: str, auto_alpha: bool,
                                                              gamma: float) -> None:
    logits, labels = random_batch(seed)
    ours_in = logits.clone().requires_grad_(True)
    ref_in = logits.clone().requires_grad_(True)
    ours = stream_focal_loss(ours_in, labels, STATES, gamma=gamma, alpha=alpha)
    reference = softmax_stream_focal_loss(ref_in, labels, STATES, gamma=gamma, auto_alpha=auto_alpha)
    assert ours.item() == pytest.approx(reference.item(), abs=1e-5)
    ours.backward()
    reference.backward()
    assert torch.allclose(ours_in.grad, ref_in.grad, atol=1e-5)


def test_reduces_to_cross_entropy() -> None:
    logits, labels = random_batch(4)
    shifted = logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1)
    plain = F.cross_entropy(*shifted, ignore_index=-100)
    unweighted = stream_focal_loss(logits, labels, STATES, gamma=0.0, alpha="none")
    assert unweighted.item() == pytest.approx(plain.item(), abs=1e-6)
    no_states = labels.clone()
    no_states[torch.isin(no_states, torch.tensor(STATES))] = 5
    plain = F.cross_entropy(logits[:, :-1].reshape(-1, 50), no_states[:, 1:].reshape(-1), ignore_index=-100)
    assert stream_focal_loss(logits, no_states, STATES).item() == pytest.approx(plain.item(), abs=1e-6)


def test_alpha_from_split_counts_and_as_a_tensor() -> None:
    alpha = alpha_from_counts([60, 30, 10])
    assert torch.allclose(alpha, torch.tensor([100 / 60, 100 / 30, 100 / 10]) / 3)
    assert alpha_from_counts([5, 0, 5]).tolist() == [1.0, 0.0, 1.0]
    logits, labels = random_batch(5)
    # a tensor equal to what the batch would give reproduces the batch mode exactly
    counts = [int((labels[:, 1:] == s).sum()) for s in STATES]
    assert stream_focal_loss(logits, labels, STATES, alpha=alpha_from_counts(counts)).item() == pytest.approx(
        stream_focal_loss(logits, labels, STATES, alpha="batch").item(), abs=1e-6)


def test_num_items_in_batch_overrides_the_divisor() -> None:
    logits, labels = random_batch(6)
    full = stream_focal_loss(logits, labels, STATES)
    labelled = int((labels[:, 1:] != -100).sum())
    halved = stream_focal_loss(logits, labels, STATES, num_items_in_batch=2 * labelled)
    assert halved.item() == pytest.approx(full.item() / 2, rel=1e-6)


def test_frame_variant_is_the_same_loss_over_three_states() -> None:
    generator = torch.Generator().manual_seed(7)
    logits = torch.randn(2, 9, 3, generator=generator, requires_grad=True)
    labels = torch.randint(0, 3, (2, 9), generator=generator)
    labels[1, 6:] = -100
    frames = frame_focal_loss(logits, labels)
    # as a causal LM over a 3-token vocabulary: one more position, so that after the shift logits[t]
    # predicts labels[t]
    as_lm = stream_focal_loss(torch.cat([logits, torch.zeros(2, 1, 3)], 1),
                              torch.cat([torch.full((2, 1), -100), labels], 1), [0, 1, 2])
    assert frames.item() == pytest.approx(as_lm.item(), abs=1e-6)
    frames.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_bad_alpha_is_refused() -> None:
    logits, labels = random_batch(8)
    with pytest.raises(ValueError, match="alpha must be"):
        stream_focal_loss(logits, labels, STATES, alpha="inverse")
