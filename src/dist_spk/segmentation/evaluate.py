"""``dist-spk evaluate seg``: a trained segmentation model's metrics on any split.

The metrics are the training ones (:mod:`dist_spk.segmentation.task`), computed by pyannote's
validation loop on fixed chunks of the chosen split, so a test-set figure is comparable with the
dev-set figures in ``metrics.jsonl``.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import yaml
from pyannote.database.protocol import SpeakerDiarizationProtocol

from dist_spk.config import config_from_dict
from dist_spk.config.tasks import SegLossConfig
from dist_spk.console import terminal
from dist_spk.data.layout import PYANNOTE_SUBSET
from dist_spk.errors import ConfigError, DistSpkError
from dist_spk.runs.run_dir import resolve_checkpoint


class SubsetProtocol(SpeakerDiarizationProtocol):
    """One subset of a protocol served as both its train and development subsets.

    pyannote's tasks validate on ``development`` and need ``train`` to prepare their metadata.
    """

    def __init__(self, protocol, subset: str):
        super().__init__()
        self.protocol = protocol
        self.subset = subset
        self.name = f"{protocol.name}.{subset}"

    def _files(self) -> Iterator:
        yield from getattr(self.protocol, self.subset)()

    def train_iter(self) -> Iterator:
        return self._files()

    def development_iter(self) -> Iterator:
        return self._files()


def evaluate_segmentation(checkpoint: Path, data: Path, *, protocol: str = "", split: str = "test",
                          batch_size: int = 32) -> dict[str, float]:
    """Metrics of a segmentation checkpoint (file or run directory) on ``split`` of a dataset."""
    import lightning

    from dist_spk.data.protocol import load_protocol
    from dist_spk.segmentation.model import load_pretrained
    from dist_spk.segmentation.task import SEG_BASELINES, SEG_METRICS, SegmentationTask

    if split not in PYANNOTE_SUBSET:
        raise DistSpkError(f"unknown split {split!r}; valid: {', '.join(PYANNOTE_SUBSET)}")
    checkpoint, run_dir = resolve_checkpoint(checkpoint)
    loss = SegLossConfig()
    if run_dir is not None:  # the run's own loss settings, so loss/val/* mean the same thing
        try:
            loss = config_from_dict("seg", yaml.safe_load((run_dir / "config.yaml").read_text())).loss
        except ConfigError as err:
            raise DistSpkError(f"{run_dir}: not a segmentation run ({err})") from None
    model = load_pretrained(str(checkpoint))
    specifications = model.specifications
    subset = PYANNOTE_SUBSET[split]
    with tempfile.TemporaryDirectory(prefix="dist_spk-eval-") as scratch:
        task = SegmentationTask(
            SubsetProtocol(load_protocol(data, protocol), subset),
            loss=loss,
            duration=specifications.duration,
            max_speakers_per_chunk=len(specifications.classes),
            max_speakers_per_frame=specifications.powerset_max_classes,
            batch_size=batch_size,
            num_workers=0,
            cache=str(Path(scratch) / "cache.npz"),
        )
        model.task = task
        trainer = lightning.Trainer(accelerator="auto", devices=1, logger=False, enable_progress_bar=terminal(),
                                    enable_model_summary=False)
        with warnings.catch_warnings():  # the task logs for a logger this one-off validation does not need
            warnings.filterwarnings("ignore", message=r".*no logger configured.*")
            (results,) = trainer.validate(model, verbose=False)
    return {name: float(results[name]) for name in (*SEG_METRICS, *SEG_BASELINES) if name in results}
