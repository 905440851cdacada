"""Loss classes on hand-computed cases: known values, invariances, finite gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from maskface.losses import create_loss, list_losses


def test_registry_names_every_loss():
    assert {"masked_l1", "hinge_discriminator", "hinge_generator", "identity", "bce_dice"} <= set(list_losses())
    with pytest.raises(KeyError, match="unknown loss 'nope'"):
        create_loss("nope")


def test_masked_l1_weights_hole_and_valid_per_image():
    loss = create_loss("masked_l1", hole_weight=6.0, valid_weight=1.0)
    target = torch.zeros(2, 3, 2, 2)
    output = torch.zeros(2, 3, 2, 2)
    occlusion = torch.zeros(2, 1, 2, 2)
    occlusion[0, 0, 0, 0] = 1  # image 0: one hidden pixel, error 0.5 there, 0.1 elsewhere
    output[0] = 0.1
    output[0, :, 0, 0] = 0.5
    output[1] = 0.2  # image 1: no hole, error 0.2 everywhere
    value = loss(output, target, occlusion)
    expected = ((6 * 0.5 + 1 * 0.1) + (6 * 0 + 1 * 0.2)) / 2
    assert value.item() == pytest.approx(expected, abs=1e-6)
    output.requires_grad_(True)
    loss(output, target, occlusion).backward()
    assert torch.isfinite(output.grad).all()


def test_masked_l1_is_the_same_for_a_batch_split_in_two():
    loss = create_loss("masked_l1")
    gen = torch.Generator().manual_seed(0)
    out, tgt = torch.rand(4, 3, 8, 8, generator=gen), torch.rand(4, 3, 8, 8, generator=gen)
    occ = (torch.rand(4, 1, 8, 8, generator=gen) > 0.6).float()
    whole = loss(out, tgt, occ)
    halves = (loss(out[:2], tgt[:2], occ[:2]) + loss(out[2:], tgt[2:], occ[2:])) / 2
    assert whole.item() == pytest.approx(halves.item(), abs=1e-6)


def test_hinge_losses():
    d_loss, g_loss = create_loss("hinge_discriminator"), create_loss("hinge_generator")
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.0])
    # relu(1 - 2) = 0, relu(1 - 0.5) = 0.5 -> 0.25; relu(1 - 3) = 0, relu(1 + 0) = 1 -> 0.5
    assert d_loss(real, fake).item() == pytest.approx(0.75)
    assert d_loss(torch.full((3,), 1.0), torch.full((3,), -1.0)).item() == 0
    assert g_loss(fake).item() == pytest.approx(1.5)


def test_identity_loss_uses_a_frozen_recognizer():
    recognizer = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5))
    loss = create_loss("identity", recognizer=recognizer)
    assert list(loss.parameters()) == [] and not any(p.requires_grad for p in recognizer.parameters())
    x = torch.rand(2, 3, 4, 4)
    assert loss(x, x).item() == 0
    y = x.clone().requires_grad_(True)
    z = x + 0.1
    value = loss(z.requires_grad_(True), x)
    expected = (recognizer(z * 255) - recognizer(x * 255)).pow(2).sum(1).mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    loss(y + 0.05, x).backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_bce_dice_known_values():
    loss = create_loss("bce_dice", dice_weight=1.0)
    target = torch.zeros(1, 1, 2, 2)
    target[0, 0, 0] = 1  # two of four pixels hidden
    logits = torch.zeros(1, 1, 2, 2)  # p = 0.5 everywhere: BCE = ln 2, dice = 1 - (2*1 + 1) / (4 * 0.5... )
    dice = 1 - (2 * 1.0 + 1) / ((4 * 0.5 + 2) + 1)
    assert loss(logits, target).item() == pytest.approx(math.log(2) + dice, abs=1e-6)
    confident = torch.where(target > 0, 20.0, -20.0)
    assert loss(confident, target).item() < 1e-6
    empty = torch.zeros(1, 1, 2, 2)
    assert loss(torch.full((1, 1, 2, 2), -20.0), empty).item() < 1e-6


# --- distillation ---------------------------------------------------------------------------------------------


def _embeddings(n: int = 6, d: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_instance_loss_known_value():
    s, t = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    assert create_loss("instance")(s, t).item() == pytest.approx((4 + 25) / 2)


def test_rkd_distance_is_zero_for_the_teacher_and_blind_to_student_scale():
    loss = create_loss("rkd_distance")
    t = _embeddings()
    assert loss(t.clone(), t).item() == pytest.approx(0, abs=1e-7)
    assert loss(3.5 * t, t).item() == pytest.approx(0, abs=1e-6)
    s = _embeddings(seed=1).requires_grad_(True)
    value = loss(s, t)
    assert value.item() > 0.01
    value.backward()
    assert torch.isfinite(s.grad).all()


def test_rkd_distance_known_value():
    # Three points on a line, teacher at 0, 1, 3 (distances 1, 3, 2 -> mean 2) and student at 0, 2, 3
    # (distances 2, 3, 1 -> mean 2): normalised differences 0.5, 0, 0.5 (each twice), all within Huber's
    # quadratic zone: mean of 0.5 * d^2 over the 6 off-diagonal entries = (4 * 0.125) / 6.
    t = torch.tensor([[0.0], [1.0], [3.0]])
    s = torch.tensor([[0.0], [2.0], [3.0]])
    assert create_loss("rkd_distance")(s, t).item() == pytest.approx(4 * 0.125 / 6, abs=1e-6)


def test_rkd_angle_invariances_and_right_angle():
    loss = create_loss("rkd_angle")
    t = _embeddings()
    assert loss(2.0 * t + 5.0, t).item() == pytest.approx(0, abs=1e-6)
    # The angle at (0,0) between (1,0) and (0,1) is 90 degrees: cosine 0.
    from maskface.losses.distillation import _angles

    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert _angles(square)[0, 1, 2].item() == pytest.approx(0, abs=1e-6)
    assert _angles(square)[1, 0, 2].item() == pytest.approx(np.cos(np.pi / 4), abs=1e-6)
    s = _embeddings(seed=2).requires_grad_(True)
    loss(s, t).backward()
    assert torch.isfinite(s.grad).all()


def test_identity_centred_soft_loss():
    loss = create_loss("identity_centred_soft", num_identities=3, dim=4, temperature=0.5, momentum=0.5)
    t = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]])
    labels = torch.tensor([0, 1, 2])
    loss.update(t, labels)
    assert loss(t.clone(), t).item() == pytest.approx(0, abs=1e-7)
    assert torch.equal(loss.centres, t) and loss.seen.all()
    # A second sight moves a centre half-way (momentum 0.5).
    loss.update(torch.tensor([[0.0, 0, 0, 1.0]]), torch.tensor([0]))
    assert loss.centres[0].tolist() == [0.5, 0, 0, 0.5]
    # The value is tau^2 * KL(p_t || p_s), checked against a direct computation.
    s = torch.tensor([[0.0, 1.0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]], requires_grad=True)
    value = loss(s, t)
    centres = torch.nn.functional.normalize(loss.centres, dim=1)
    p_t = torch.softmax(t @ centres.T / 0.5, 1)
    p_s = torch.softmax(s.detach() @ centres.T / 0.5, 1)
    expected = (p_t * (p_t.log() - p_s.log())).sum(1).mean() * 0.25
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert torch.isfinite(s.grad).all()


@pytest.mark.parametrize("name", ["arcface", "cosface"])
def test_margin_heads(name):
    torch.manual_seed(0)
    head = create_loss(name, num_classes=4, dim=8, scale=10.0, margin=0.0)
    x, labels = _embeddings(8, 8), torch.arange(8) % 4
    cosine = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(head.weight, dim=1).T
    plain = torch.nn.functional.cross_entropy(cosine * 10.0, labels)
    assert head(x, labels).item() == pytest.approx(plain.item(), rel=1e-4)  # margin 0: a cosine classifier
    head.margin = 0.3
    assert head(x, labels).item() > plain.item()  # a margin makes the true class harder
    x.requires_grad_(True)
    head(x, labels).backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(head.weight.grad).all()
