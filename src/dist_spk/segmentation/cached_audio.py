"""pyannote's ``Audio`` reading training chunks from a training cache (:mod:`dist_spk.data.training_cache`).

pyannote's segmentation task crops every training chunk through ``model.audio.crop(file, chunk)``, which opens and
decodes the file each time. This ``Audio`` answers the same call from the memory-mapped cache with the same samples
(the cache replicates ``Audio.crop``'s rounding), and falls back to pyannote's decoding for anything not cached.
The samples stay int16 until the training step (``SegmentationTask`` converts them with ``training_cache.to_float``,
exactly): loaders stack and ship half the bytes and skip a conversion. Everything else of pyannote's data path (chunk
sampling, label framing) is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from pyannote.audio.core.io import Audio

from dist_spk.data.training_cache import SAMPLE_RATE, TrainingCache


class CachedAudio(Audio):
    def __init__(self, cache: TrainingCache):
        super().__init__(sample_rate=SAMPLE_RATE, mono="downmix")
        self.cache = cache

    def crop(self, file, segment, mode="raise"):
        mapping = isinstance(file, Mapping)  # a dict, or a pyannote.database ProtocolFile (a Mapping, not a dict)
        source = file.get("audio") if mapping else file
        if (mapping and "waveform" in file) or not isinstance(source, str | Path) or source not in self.cache:
            return super().crop(file, segment, mode=mode)
        data = self.cache.crop(source, segment.start, segment.end, pad=mode == "pad", as_int16=True)
        return torch.from_numpy(data)[None], SAMPLE_RATE
