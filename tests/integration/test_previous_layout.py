"""Files written before the layout change still work: a speaker checkpoint (torchaudio-based Conformer blocks) and
the configs of both tasks. tests/data/layout-v1/ was written by commit be4a90d's code: the checkpoint of a 1-epoch
tiny Conformer run, the embeddings that code computed for three seeded waves, and each task's saved config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dist_spk.config import config_from_dict, read_config_file
from dist_spk.speaker.inference import load_speaker_module

LAYOUT_V1 = Path(__file__).resolve().parents[1] / "data" / "layout-v1"


def seeded_waves() -> tuple[torch.Tensor, torch.Tensor]:
    """The three padded waves the embeddings were computed on (16000, 24000 and 12000 samples)."""
    rng = np.random.default_rng(7)
    lengths = torch.tensor([16000, 24000, 12000])
    waves = torch.zeros(3, 24000)
    for row, length in enumerate(lengths.tolist()):
        waves[row, :length] = torch.from_numpy(rng.standard_normal(length).astype(np.float32) * 0.1)
    return waves, lengths


def test_a_speaker_checkpoint_of_the_previous_layout_gives_the_same_embeddings():
    module = load_speaker_module(LAYOUT_V1 / "spk.ckpt")  # strict state-dict load: every parameter name matches
    with torch.inference_mode():
        embeddings = module.encoder(*seeded_waves())
    expected = torch.from_numpy(np.load(LAYOUT_V1 / "spk-embeddings.npy"))
    assert embeddings.shape == expected.shape == (3, 16)
    assert torch.allclose(embeddings, expected, atol=1e-5), (embeddings - expected).abs().max()


def test_configs_of_the_previous_layout_load():
    for task in ("seg", "spk"):
        config = config_from_dict(task, read_config_file(LAYOUT_V1 / f"{task}-config.yaml"))
        assert config.optim.name and config.trainer.epochs > 0
