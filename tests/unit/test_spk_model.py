"""AAM-softmax head, margin schedule, and the encoders' shapes and masking."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dist_spk.config import load_config
from dist_spk.config.tasks import HeadConfig
from dist_spk.speaker.encoder import SpeakerEncoder
from dist_spk.speaker.head import AAMSoftmax, MarginScheduler, SoftmaxHead, build_head


def test_aam_logits_are_scaled_cosines_without_margin():
    torch.manual_seed(0)
    head = AAMSoftmax(8, 5, margin=0.0, scale=30.0)
    emb, labels = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    expected = 30.0 * F.linear(F.normalize(emb), F.normalize(head.weight))
    assert torch.allclose(head(emb, labels), expected, atol=1e-4)


def test_a_margin_lowers_only_the_target_logit():
    torch.manual_seed(0)
    head = AAMSoftmax(8, 5, margin=0.0, scale=30.0)
    emb, labels = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    plain = head(emb, labels)
    head.set_margin(0.3)
    with_margin = head(emb, labels)
    target = F.one_hot(labels, 5).bool()
    assert torch.equal(with_margin[~target], plain[~target])
    assert torch.all(with_margin[target] < plain[target])
    theta = torch.acos((plain[target] / 30).clamp(-1, 1))
    inside = theta + 0.3 < math.pi
    assert torch.allclose(with_margin[target][inside], 30 * torch.cos(theta[inside] + 0.3), atol=1e-3)


def test_subcenters_take_the_best_one():
    head = AAMSoftmax(4, 2, margin=0.0, scale=1.0, subcenters=3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0],
                                        [0, 0, 0, 1.0], [-1.0, 0, 0, 0], [0, -1.0, 0, 0]]))
    logits = head(torch.tensor([[0.0, 0.0, 1.0, 0.0]]), torch.tensor([0])).detach()
    assert logits[0, 0] == pytest.approx(1.0)  # class 0's third sub-center matches exactly
    assert logits[0, 1] == pytest.approx(0.0)


def test_margin_schedule_reaches_its_endpoints():
    head = build_head(HeadConfig(margin=0.2, margin_warmup_epochs=2), 8, 3)
    assert head.margin == 0.0  # warm-up starts from no margin
    schedule = MarginScheduler(head, final=0.2, warmup_steps=100)
    assert schedule.step(0) == 0.0
    assert schedule.step(50) == pytest.approx(0.1) and head.margin == pytest.approx(0.1)
    assert schedule.step(100) == pytest.approx(0.2) and schedule.step(10_000) == pytest.approx(0.2)
    assert isinstance(build_head(HeadConfig(type="softmax"), 8, 3), SoftmaxHead)


@pytest.mark.parametrize("arch", ["conformer", "ecapa"])
def test_encoder_shapes_on_variable_lengths(arch):
    config = load_config("spk", overrides=[f"model.arch={arch}"])
    encoder = SpeakerEncoder(config.model, config.frontend).eval()
    with torch.no_grad():
        out = encoder(torch.randn(3, 24000), torch.tensor([24000, 16000, 9000]))
    assert out.shape == (3, config.model.emb_size) and torch.isfinite(out).all()


def test_conformer_padding_never_changes_an_embedding():
    config = load_config("spk")
    encoder = SpeakerEncoder(config.model, config.frontend).eval()
    torch.manual_seed(1)
    wave = torch.randn(3, 32000)  # whatever follows each length is padding, here noise
    lengths = torch.tensor([32000, 20000, 9000])
    with torch.no_grad():
        batch = encoder(wave, lengths)
        for row, length in enumerate(lengths.tolist()):
            alone = encoder(wave[row:row + 1, :length], lengths[row:row + 1])
            assert torch.allclose(batch[row], alone[0], atol=1e-5)


def test_presets_span_tiny_to_about_twenty_million_parameters():
    def size(preset):
        config = load_config("spk", preset_name=preset)
        return sum(p.numel() for p in SpeakerEncoder(config.model, config.frontend).parameters())

    assert size("local") < 1_000_000
    assert 15_000_000 < size("cluster") < 25_000_000
