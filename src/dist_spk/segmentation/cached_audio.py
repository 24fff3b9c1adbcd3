"""pyannote's ``Audio`` reading training chunks from a training cache (:mod:`dist_spk.data.training_cache`).

pyannote's segmentation task crops every training chunk through ``model.audio.crop(file, chunk)``, which opens and
decodes the file each time. This ``Audio`` answers the same call from the memory-mapped cache with the same samples
(the cache replicates ``Audio.crop``'s rounding), and falls back to pyannote's decoding for anything not cached.
Everything else of pyannote's data path (chunk sampling, label framing, collation, augmentation) is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pyannote.audio.core.io import Audio

from dist_spk.data.training_cache import SAMPLE_RATE, TrainingCache


class CachedAudio(Audio):
    def __init__(self, cache: TrainingCache):
        super().__init__(sample_rate=SAMPLE_RATE, mono="downmix")
        self.cache = cache

    def crop(self, file, segment, mode="raise"):
        source = file.get("audio") if isinstance(file, dict) else file
        if (isinstance(file, dict) and "waveform" in file) or not isinstance(source, str | Path) \
                or source not in self.cache:
            return super().crop(file, segment, mode=mode)
        data = self.cache.crop(source, segment.start, segment.end, pad=mode == "pad")
        return torch.from_numpy(data)[None], SAMPLE_RATE
