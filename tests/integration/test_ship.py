"""What a search ships, checked with the owners' own loaders: a pipeline folder pyannote's ``Pipeline.from_pretrained``
loads in a process that never imports dist_spk, ``dist-spk diarize`` on audio without references, model folders
``Model.from_pretrained`` loads, encoders exported to ONNX (run by onnxruntime), TorchScript and pyannote."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from pyannote.database.util import load_rttm

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(seg_run, spk_run, small_corpus, tmp_path_factory) -> tuple[Path, Path, dict]:
    """(pipeline folder, RTTMs evaluate wrote, report): the tiny models tuned on dev and exported."""
    from dist_spk.pipeline.evaluate import evaluate_pipeline

    root = tmp_path_factory.mktemp("exported")
    report = evaluate_pipeline(seg_run[0], spk_run[0], small_corpus / "diar", split="test", tune_on="dev",
                               iterations=3, rttm_dir=root / "rttm", export=root / "pipeline")
    return root / "pipeline", root / "rttm", report


def _pyannote_alone(folder: Path, wavs: list[Path], out: Path) -> subprocess.CompletedProcess:
    """Load ``folder`` with pyannote in a fresh process that never imports dist_spk, diarize ``wavs`` into ``out``."""
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from pyannote.audio import Pipeline
        assert "dist_spk" not in sys.modules
        pipeline = Pipeline.from_pretrained({str(folder)!r})
        for wav in {[str(w) for w in wavs]!r}:
            output = pipeline(wav)
            with open(Path({str(out)!r}) / (Path(wav).stem + ".rttm"), "w") as handle:
                output.speaker_diarization.write_rttm(handle)
        print(type(pipeline).__module__, type(pipeline._embedding.model_).__module__)
    """)
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)


def test_pyannote_loads_the_exported_folder_and_gives_what_diarize_gives(exported, small_corpus, tmp_path):
    folder, evaluated, report = exported
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["pipeline"]["name"] == "pyannote.audio.pipelines.SpeakerDiarization"
    assert config["pipeline"]["params"]["embedding"] == "$model/embedding"
    assert config["params"]["clustering"]["threshold"] == pytest.approx(
        report["tuned"]["params"]["clustering"]["threshold"])
    for part in ("segmentation", "embedding"):
        assert (folder / part / "pytorch_model.bin").is_file()
    card = (folder / "README.md").read_text()
    for expected in ("DER", "one speaker oracle speech", "pyannote.audio", "torch", "dist-spk", "sha256",
                     "Pipeline.from_pretrained", str(small_corpus / "diar")):
        assert expected in card, expected

    wavs = sorted((small_corpus / "diar" / "test" / "wav").glob("*.wav"))
    alone = _pyannote_alone(folder, wavs, tmp_path / "pyannote")
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert alone.stdout.split() == ["pyannote.audio.pipelines.speaker_diarization", "dist_spk.pipeline.embedding"]
    result = run_cli("diarize", small_corpus / "diar" / "test" / "wav", "--pipeline", folder, "--out",
                     tmp_path / "ours", "--device", "auto", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for wav in wavs:
        ours = (tmp_path / "ours" / f"{wav.stem}.rttm").read_text()
        assert ours == (tmp_path / "pyannote" / f"{wav.stem}.rttm").read_text()
        # and the folder reproduces the pipeline evaluate tuned (evaluate names speakers after the reference)
        hypothesis = load_rttm(tmp_path / "ours" / f"{wav.stem}.rttm")[wav.stem]
        tuned = load_rttm(evaluated / f"{wav.stem}.rttm")[wav.stem]
        assert [s for s, _ in hypothesis.itertracks()] == [s for s, _ in tuned.itertracks()]


def test_diarize_on_audio_without_references_and_its_refusals(exported, small_corpus, tmp_path):
    folder = exported[0]
    wavs = sorted((small_corpus / "diar" / "test" / "wav").glob("*.wav"))
    audio = tmp_path / "audio"  # no rttm/, no uem/, no lists: just recordings
    audio.mkdir()
    shutil.copy(wavs[0], audio / "meeting.wav")
    listing = tmp_path / "more.txt"
    listing.write_text(f"# recordings\n{wavs[1]}\n\n")
    out = tmp_path / "rttm"
    first = run_cli("diarize", audio, listing, "--pipeline", folder, "--out", out, "--num-speakers", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    made = {p.name: p.read_text() for p in out.glob("*.rttm")}
    assert set(made) == {"meeting.rttm", f"{wavs[1].stem}.rttm"}
    assert len(load_rttm(out / "meeting.rttm")["meeting"].labels()) == 2  # --num-speakers reached the pipeline

    (out / "meeting.rttm").write_text("kept\n")  # an existing RTTM is never overwritten without --overwrite
    again = run_cli("diarize", audio, "--pipeline", folder, "--out", out)
    assert again.returncode == 0 and (out / "meeting.rttm").read_text() == "kept\n"
    assert "skipped 1 file" in again.stdout
    forced = run_cli("diarize", audio, "--pipeline", folder, "--out", out, "--overwrite", "--num-speakers", "2")
    assert forced.returncode == 0 and (out / "meeting.rttm").read_text() == made["meeting.rttm"]

    twin = tmp_path / "twin"
    twin.mkdir()
    shutil.copy(wavs[1], twin / "meeting.wav")
    same_stem = run_cli("diarize", audio, twin, "--pipeline", folder, "--out", tmp_path / "r2")
    assert same_stem.returncode == 2 and "Traceback" not in same_stem.stderr
    assert str(audio / "meeting.wav") in same_stem.stderr and str(twin / "meeting.wav") in same_stem.stderr

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.wav").write_bytes(b"RIFF....not audio at all")
    unreadable = run_cli("diarize", broken, "--pipeline", folder, "--out", tmp_path / "r3")
    assert unreadable.returncode == 2 and "Traceback" not in unreadable.stderr
    assert "bad.wav" in unreadable.stderr and "unreadable audio" in unreadable.stderr
    assert not (tmp_path / "r3").exists()  # refused before anything was written

    for args, words in ((["--pipeline", folder, "--min-speakers", "3", "--max-speakers", "2"], "above"),
                        (["--pipeline", tmp_path], "no config.yaml"),
                        (["--pipeline", folder, "--device", "tpu"], "--device")):
        bad = run_cli("diarize", audio, "--out", tmp_path / "r4", *args)
        assert bad.returncode == 2 and words in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_export_refuses_a_folder_it_did_not_write(seg_run, spk_run, tmp_path):
    from dist_spk.errors import DistSpkError
    from dist_spk.pipeline.evaluate import evaluate_pipeline

    target = tmp_path / "mine"
    target.mkdir()
    (target / "README.md").write_text("the user's own notes\n")
    with pytest.raises(DistSpkError, match="already holds README.md"):
        evaluate_pipeline(seg_run[0], spk_run[0], "pyannote:sample", export=target)
    with pytest.raises(DistSpkError, match="not an earlier export"):
        evaluate_pipeline(seg_run[0], spk_run[0], "pyannote:sample", export=target, force=True)
    assert (target / "README.md").read_text() == "the user's own notes\n"


def test_model_folders_load_with_pyannotes_own_loader(seg_run, spk_run, small_corpus, tmp_path):
    from pyannote.audio import Inference, Model

    from dist_spk.tune.results import write_pyannote_model

    seg = Model.from_pretrained(seg_run[0] / "checkpoints")  # a segmentation run's checkpoints/ is a model folder
    assert seg.specifications.powerset
    best = tmp_path / "best"  # what export_best writes into EXP/best beside checkpoint.ckpt
    for run, task in ((seg_run[0], "seg"), (spk_run[0], "spk")):
        write_pyannote_model(run / "checkpoints" / "best.ckpt", best, task=task)
        model = Model.from_pretrained(best)
        assert type(model).__name__ == ("PyanNet" if run == seg_run[0] else "SpeakerEncoderModel")

    wav = next((small_corpus / "spk").rglob("*.wav"))
    result = run_cli("embed", "--checkpoint", spk_run[0], wav, "--out", tmp_path / "e.npz")
    assert result.returncode == 0, result.stderr[-2000:]
    ours = np.load(tmp_path / "e.npz")[str(wav)]
    theirs = Inference(Model.from_pretrained(best), window="whole")(str(wav))
    assert np.linalg.norm(theirs - ours) / np.linalg.norm(ours) < 1e-4


@pytest.mark.parametrize("format", ["onnx", "torchscript", "pyannote"])
def test_encoder_exports_embed_a_ragged_batch_as_the_checkpoint_does(spk_run, tmp_path, format):
    from dist_spk.speaker.inference import load_speaker_module

    out = tmp_path / f"encoder.{format}"
    result = run_cli("export", "spk", "--checkpoint", spk_run[0], "--format", format, "-o", out, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    card = out / "README.md" if format == "pyannote" else out.with_name(out.name + ".README.md")
    assert "eer" in card.read_text() and "Export parity" in card.read_text()

    module = load_speaker_module(spk_run[0])
    rng = np.random.default_rng(1)
    lengths = np.array([27000, 9000, 40000, 16000])  # another batch than the exporter's own check
    waves = np.zeros((4, 40000), dtype=np.float32)
    for row, length in enumerate(lengths):
        waves[row, :length] = 0.1 * rng.standard_normal(length)
    with torch.inference_mode():
        expected = np.concatenate([module(torch.from_numpy(waves[i : i + 1, :n]), torch.tensor([n])).numpy()
                                   for i, n in enumerate(lengths)])
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        found = session.run(None, {"waves": waves, "lengths": lengths.astype(np.int64)})[0]
    elif format == "torchscript":
        found = torch.jit.load(str(out))(torch.from_numpy(waves), torch.from_numpy(lengths)).detach().numpy()
    else:
        from pyannote.audio import Model

        model = Model.from_pretrained(out).eval()  # as pyannote's Inference and pipelines use it
        with torch.inference_mode():
            found = np.concatenate([model(torch.from_numpy(waves[i : i + 1, None, :n])).numpy()
                                    for i, n in enumerate(lengths)])
    assert found.shape == (4, module.config.model.emb_size)
    relative = np.linalg.norm(found - expected, axis=1) / np.linalg.norm(expected, axis=1)
    assert relative.max() < 1e-4, relative
    cosine = (found * expected).sum(1) / np.linalg.norm(found, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.9999

    again = run_cli("export", "spk", "--checkpoint", spk_run[0], "--format", format, "-o", out)
    assert again.returncode == 2 and "--force" in again.stderr


def test_vbx_with_a_plda_of_our_encoder_is_tuned_and_shipped(seg_run, spk_run, small_corpus, tmp_path):
    from pyannote.audio.sample import SAMPLE_FILE

    from dist_spk.pipeline.evaluate import evaluate_pipeline

    plda = tmp_path / "plda"
    made = run_cli("train", "plda", "--embedding", spk_run[0], "--data", small_corpus / "spk", "--out", plda)
    assert made.returncode == 0, made.stderr[-2000:]
    assert {"xvec_transform.npz", "plda.npz", "plda.json", "README.md"} <= {p.name for p in plda.iterdir()}
    again = run_cli("train", "plda", "--embedding", spk_run[0], "--data", small_corpus / "spk", "--out", plda)
    assert again.returncode == 2 and "--force" in again.stderr

    report = evaluate_pipeline(seg_run[0], spk_run[0], small_corpus / "diar", split="test", tune_on="dev",
                               iterations=3, clustering="vbx", plda=plda, export=tmp_path / "pipeline")
    assert set(report["tuned"]["params"]["clustering"]) == {"threshold", "Fa", "Fb"}
    config = yaml.safe_load((tmp_path / "pipeline" / "config.yaml").read_text())
    assert config["pipeline"]["params"]["clustering"] == "VBxClustering"
    assert (tmp_path / "pipeline" / "plda" / "plda.npz").read_bytes() == (plda / "plda.npz").read_bytes()
    alone = _pyannote_alone(tmp_path / "pipeline", [Path(SAMPLE_FILE["audio"])], tmp_path / "rttm")
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert len(load_rttm(tmp_path / "rttm" / "sample.rttm")["sample"].labels()) >= 1


@pytest.mark.parametrize("clustering", ["hdbscan", "bisecting_kmeans"])
def test_our_own_clusterings_ship_with_our_pipeline_class(seg_run, spk_run, tmp_path, clustering):
    from pyannote.audio.sample import SAMPLE_FILE

    from dist_spk.pipeline.evaluate import SAMPLE, evaluate_pipeline

    evaluate_pipeline(seg_run[0], spk_run[0], SAMPLE, clustering=clustering, export=tmp_path / "pipeline")
    config = yaml.safe_load((tmp_path / "pipeline" / "config.yaml").read_text())
    assert config["pipeline"]["name"] == "dist_spk.pipeline.diarization.SpeakerDiarization"
    alone = _pyannote_alone(tmp_path / "pipeline", [Path(SAMPLE_FILE["audio"])], tmp_path / "rttm")
    assert alone.returncode == 0, alone.stderr[-3000:]
