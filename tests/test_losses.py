"""Loss classes on hand-computed cases: known values, invariances, finite gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from maskface.losses import create_loss, list_losses


def test_registry_names_every_loss():
    assert {"masked_l1", "hinge_discriminator", "hinge_generator", "identity", "bce_dice", "template_kd",
            "elasticface_arc", "elasticface_cos", "elasticface_arc_plus", "elasticface_cos_plus"} <= set(list_losses())
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


def test_margin_heads_leave_out_label_minus_one():
    torch.manual_seed(0)
    head = create_loss("arcface", num_classes=3, dim=4, scale=8.0, margin=0.3)
    x, labels = _embeddings(5, 4), torch.tensor([0, -1, 2, -1, 1])
    keep = labels >= 0
    assert head(x, labels).item() == pytest.approx(head(x[keep], labels[keep]).item(), rel=1e-6)
    nobody = head(x, torch.full((5,), -1))
    nobody.backward()
    assert nobody.item() == 0 and torch.equal(head.weight.grad, torch.zeros(3, 4))


# --- ElasticFace and template KD (MaskInv) ---------------------------------------------------------------------

# Two unit class centres on the axes; a sample at 60 degrees from centre 0 (length 2: only its direction counts).
_CENTRES = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
_AT_60 = torch.tensor([[1.0, math.sqrt(3)]])


def _head(name: str, **kwargs):
    head = create_loss(name, num_classes=2, dim=2, **kwargs)
    head.weight.data.copy_(_CENTRES)
    return head


def test_elasticface_arc_with_a_fixed_margin_by_hand():
    # std 0: the margin is 0.5. True logit 2 cos(pi/3 + 0.5), other 2 cos(pi/6) = sqrt(3).
    head = _head("elasticface_arc", scale=2.0, margin=0.5, std=0.0)
    expected = math.log1p(math.exp(math.sqrt(3) - 2 * math.cos(math.pi / 3 + 0.5)))
    assert head(_AT_60, torch.tensor([0])).item() == pytest.approx(expected, abs=1e-5)
    # The same sample labelled 1 (30 degrees away): 2 cos(pi/6 + 0.5) against 2 cos(pi/3) = 1.
    expected = math.log1p(math.exp(1 - 2 * math.cos(math.pi / 6 + 0.5)))
    assert head(_AT_60, torch.tensor([1])).item() == pytest.approx(expected, abs=1e-5)


def test_elasticface_cos_with_a_fixed_margin_by_hand():
    head = _head("elasticface_cos", scale=2.0, margin=0.35, std=0.0)
    expected = math.log1p(math.exp(math.sqrt(3) - 2 * (0.5 - 0.35)))
    assert head(_AT_60, torch.tensor([0])).item() == pytest.approx(expected, abs=1e-5)


def test_elasticface_logits_take_one_margin_per_sample_by_hand():
    arc, cos = _head("elasticface_arc", scale=3.0), _head("elasticface_cos", scale=3.0)
    x = torch.cat([_AT_60, torch.tensor([[0.0, 1.0]])])  # second sample on centre 1: cosines (0, 1)
    labels, margins = torch.tensor([0, 1]), torch.tensor([0.4, 0.6], dtype=torch.float64)
    assert torch.allclose(arc.logits(arc.cosines(x), labels, margins),
                          3 * torch.tensor([[math.cos(math.pi / 3 + 0.4), math.sqrt(3) / 2],
                                            [0.0, math.cos(0.6)]]), atol=1e-5)
    assert torch.allclose(cos.logits(cos.cosines(x), labels, margins),
                          3 * torch.tensor([[0.5 - 0.4, math.sqrt(3) / 2], [0.0, 1 - 0.6]]), atol=1e-5)


def test_elasticface_plus_gives_the_smallest_margin_to_the_sample_closest_to_its_centre():
    from maskface.losses.elasticface import rank_matched_margins

    drawn = torch.tensor([0.47, 0.52, 0.50])
    true_cosine = torch.tensor([0.1, 0.9, 0.5])
    # Closest (0.9) gets 0.47, then 0.5 gets 0.50, the farthest (0.1) gets 0.52. (Indexing the sorted margins with
    # the descending order itself, as the authors' code does, would give [0.50, 0.52, 0.47]: the reverse rule.)
    assert torch.equal(rank_matched_margins(drawn, true_cosine), torch.tensor([0.52, 0.47, 0.50]))
    assert torch.equal(rank_matched_margins(drawn, torch.tensor([0.3, 0.2, 0.1])), torch.tensor([0.47, 0.50, 0.52]))


@pytest.mark.parametrize("name", ["elasticface_arc_plus", "elasticface_cos_plus"])
def test_elasticface_plus_forward_uses_the_rank_matched_draw(name):
    from maskface.losses.elasticface import rank_matched_margins

    head, twin = _head(name, scale=4.0, std=0.2, seed=5), _head(name, scale=4.0, std=0.2, seed=5)
    x = torch.tensor([[1.0, 0.2], [0.3, 1.0], [1.0, 1.0], [1.0, -0.8]])
    labels = torch.tensor([0, 1, 0, 0])
    cosine = head.cosines(x)
    drawn = twin.draw_margins(4)
    assigned = rank_matched_margins(drawn, cosine[torch.arange(4), labels].double())
    assert not torch.equal(assigned, drawn)  # this draw is not already in rank order
    expected = torch.nn.functional.cross_entropy(head.logits(cosine, labels, assigned), labels)
    assert head(x, labels).item() == pytest.approx(expected.item(), abs=1e-6)


def test_elasticface_margins_are_seeded_normal_draws_that_resume():
    head = create_loss("elasticface_arc", num_classes=3, dim=4, seed=1)
    assert (head.scale, head.margin, head.std) == (64.0, 0.5, 0.05)  # the paper's ElasticFace-Arc
    assert (create_loss("elasticface_cos", num_classes=3, dim=4).margin,
            create_loss("elasticface_arc_plus", num_classes=3, dim=4).std,
            create_loss("elasticface_cos_plus", num_classes=3, dim=4).std) == (0.35, 0.0175, 0.025)
    many = head.draw_margins(20_000)
    assert many.mean().item() == pytest.approx(0.5, abs=0.002)
    assert many.std().item() == pytest.approx(0.05, rel=0.03)
    first, second = head.draw_margins(3), head.draw_margins(3)
    assert not torch.equal(first, second)
    again = create_loss("elasticface_arc", num_classes=3, dim=4, seed=1)
    again.draw_margins(20_000)
    assert torch.equal(again.draw_margins(3), first)  # same seed, same sequence
    resumed = create_loss("elasticface_arc", num_classes=3, dim=4, seed=1)
    resumed.load_state_dict(again.state_dict())  # the draw count travels in checkpoints
    assert torch.equal(resumed.draw_margins(3), second)
    assert not torch.equal(create_loss("elasticface_arc", num_classes=3, dim=4, seed=2).draw_margins(3),
                           create_loss("elasticface_arc", num_classes=3, dim=4, seed=1).draw_margins(3))


@pytest.mark.parametrize("name", ["elasticface_arc", "elasticface_cos", "elasticface_arc_plus",
                                  "elasticface_cos_plus"])
def test_elasticface_heads_ignore_minus_one_and_train(name):
    torch.manual_seed(0)
    x, labels = _embeddings(6, 4).requires_grad_(True), torch.tensor([0, -1, 2, 1, -1, 2])
    head = create_loss(name, num_classes=3, dim=4, std=0.0)
    keep = labels >= 0
    assert head(x, labels).item() == pytest.approx(head(x[keep], labels[keep]).item(), rel=1e-6)
    head(x, labels).backward()
    assert torch.all(x.grad[~keep] == 0) and torch.isfinite(x.grad).all() and x.grad[keep].abs().sum() > 0
    nobody = head(x, torch.full((6,), -1))
    assert nobody.item() == 0 and nobody.requires_grad
    # A few SGD steps on the centres lower the loss of a fixed batch.
    optimizer = torch.optim.SGD(head.parameters(), lr=0.5)
    features = x.detach()
    before = head(features, labels).item()
    for _ in range(20):
        optimizer.zero_grad()
        head(features, labels).backward()
        optimizer.step()
    assert head(features, labels).item() < before


def test_template_kd_by_hand():
    loss = create_loss("template_kd", weight=100.0)
    student = torch.tensor([[3.0, 4.0], [1.0, 0.0]], requires_grad=True)
    teacher = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    # unit vectors (0.6, 0.8) vs (0, 1): squared differences 0.36, 0.04; (1, 0) vs (-1, 0): 4, 0; mean of 4 = 1.1
    value = loss(student, teacher)
    assert value.item() == pytest.approx(110.0, rel=1e-6)
    assert create_loss("template_kd", weight=3000.0)(student, teacher).item() == pytest.approx(3300.0, rel=1e-6)
    assert loss(2.5 * teacher, teacher).item() == pytest.approx(0.0, abs=1e-10)  # length does not count
    value.backward()
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
