"""pyannote.database protocols from the seed layout, and pyannote.audio training on one."""

from __future__ import annotations

import math

import pytest
import yaml

from dist_spk.data.protocol import SeedProtocol, load_protocol, write_database_yaml
from dist_spk.errors import DataError


def test_seed_protocol_yields_pyannote_files(seed_dataset):
    protocol = SeedProtocol(seed_dataset)
    assert protocol.name == "dataset.SpeakerDiarization.seed"
    train = list(protocol.train())
    assert [f["uri"] for f in train] == ["a1", "a2", "a3"]
    first = train[0]
    assert first["audio"].endswith("train/wav/a1.wav")
    assert sorted(first["annotation"].labels()) == ["alice", "bob"]
    assert first["annotation"].get_timeline().support().duration() == pytest.approx(10.0)
    assert first["annotated"].duration() == pytest.approx(12.0)
    assert first["database"] == "dataset" and first["subset"] == "train" and first["scope"] == "file"
    assert [f["uri"] for f in protocol.development()] == ["b1"]
    assert [f["uri"] for f in protocol.test()] == ["c1"]


def test_missing_uem_means_the_whole_file(seed_dataset):
    (seed_dataset / "dev/uem/b1.uem").unlink()
    (file,) = SeedProtocol(seed_dataset).development()
    assert file["annotated"].duration() == pytest.approx(12.0)


def test_written_yaml_loads_into_the_same_protocol(seed_dataset, tmp_path):
    (seed_dataset / "train/uem/a2.uem").unlink()  # forces a merged UEM for train
    path = write_database_yaml(seed_dataset, tmp_path / "db" / "database.yml", name="Mine")
    document = yaml.safe_load(path.read_text())
    assert document["Protocols"]["Mine"]["SpeakerDiarization"]["seed"]["development"]["annotated"].endswith(
        "dev/uem/{uri}.uem")
    assert (tmp_path / "db" / "database.train.uem").is_file()
    from_yaml = load_protocol(path, "Mine.SpeakerDiarization.seed")
    direct = SeedProtocol(seed_dataset)
    for subset in ("train", "development", "test"):
        ours = list(getattr(direct, subset)())
        theirs = list(getattr(from_yaml, subset)())
        assert [f["uri"] for f in theirs] == [f["uri"] for f in ours]
        for a, b in zip(ours, theirs, strict=True):
            assert a["annotation"] == b["annotation"]
            assert a["annotated"] == b["annotated"]
            assert str(a["audio"]) == str(b["audio"])


def test_yaml_protocol_errors_name_the_file_and_known_protocols(seed_dataset, tmp_path):
    path = write_database_yaml(seed_dataset, tmp_path / "database.yml", name="Mine")
    with pytest.raises(DataError, match=r"database\.yml: cannot load protocol 'Mine\.SpeakerDiarization\.nope'.*"
                                        r"protocols defined: Mine\.SpeakerDiarization\.seed"):
        load_protocol(path, "Mine.SpeakerDiarization.nope")
    with pytest.raises(DataError, match="needs a protocol name"):
        load_protocol(path, "")
    with pytest.raises(DataError, match="neither a seed-layout folder"):
        load_protocol(tmp_path / "empty-folder")


@pytest.mark.slow
def test_pyannote_speaker_diarization_task_trains_on_the_seed_protocol(tiny_corpus, tmp_path):
    import lightning
    from pyannote.audio.models.segmentation import PyanNet
    from pyannote.audio.tasks import SpeakerDiarization

    protocol = load_protocol(tiny_corpus / "diar")
    task = SpeakerDiarization(protocol, duration=5.0, max_speakers_per_chunk=4, max_speakers_per_frame=2,
                              batch_size=4, num_workers=0, cache=tmp_path / "cache")
    model = PyanNet(task=task, sincnet={"stride": 10}, lstm={"hidden_size": 32, "num_layers": 1})
    trainer = lightning.Trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=1, accelerator="cpu",
                                logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                default_root_dir=tmp_path)
    trainer.fit(model)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert math.isfinite(metrics["loss/train"])
    assert "DiarizationErrorRate" in metrics and metrics["DiarizationErrorRate"] >= 0.0
    assert (tmp_path / "cache").is_file()  # the prepared metadata, reusable by later runs
