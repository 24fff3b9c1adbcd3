"""Real-time factor of our exported diarization pipeline vs pyannote community-1's architecture, same files and threads.

Both pipelines are folders loaded by pyannote's own ``Pipeline.from_pretrained`` and share one segmentation model
(a PyanNet with segmentation-3.0's hyper-parameters: 10 s chunks, SincNet stride 10, 4 x 128 BiLSTM, 2 x 128 linear,
3 speakers / 2 per frame powerset; seeded random weights, the same in both: community-1's segmentation is that
architecture, and ours fine-tunes it), so both see the same speech turns and embed the same (chunk, speaker) pairs.
They differ where they really do:

- ours: our speaker encoder at the ``cluster`` preset's size (MFA-Conformer, 6 x 256, 192-d, 80 mels), agglomerative
  clustering, embedding_exclude_overlap false (as ``evaluate pipeline --export`` writes it);
- community-1's architecture: pyannote's WeSpeakerResNet34 (its own fbank), VBx clustering with a PLDA in its 256-d
  space (an identity PLDA here: the hub's cannot be fetched; VBx's cost does not depend on its values),
  embedding_exclude_overlap true (pyannote/speaker-diarization-3.1's published setting).

Speed does not depend on the weights, so random ones are fine. Each pipeline diarizes every file ``ROUNDS`` times,
alternating (A B A B); the figure is the ratio of their median wall times. Also: embeddings per second of our
encoder in the pipeline's ``get_embeddings`` with batches of 32 (what ``diarize`` ships) vs one chunk at a time.

Because the random segmentation leaves one speaker active in most chunks (reported as ``active_pair_fraction``), and
our encoder's wrapper skips (chunk, speaker) pairs without speech while pyannote's ResNet embeds all of them, the
pipeline figure favours us more than real speech would; the encoders' own speed per embedding, with every frame
active, is reported beside it (``encoder_speed_ratio_ours_vs_resnet34``: our time per embedding / ResNet34's).

``python -m bench.pipeline_speed`` (~8 min on 2 cores).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
import yaml

from bench.common import WORK, corpus, record

ROUNDS = 2
FILES = 3  # of the small corpus's test split (~150 s of audio)
THREADS = 2
SEED = 0


def _segmentation():
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation import PyanNet

    torch.manual_seed(SEED)
    model = PyanNet(sincnet={"stride": 10}, lstm={"hidden_size": 128, "num_layers": 4, "bidirectional": True,
                                                  "monolithic": True, "dropout": 0.5},
                    linear={"hidden_size": 128, "num_layers": 2})
    model.specifications = Specifications(problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME,
                                          duration=10.0, min_duration=10.0, warm_up=(0.0, 0.0),
                                          classes=["speaker#1", "speaker#2", "speaker#3"], powerset_max_classes=2,
                                          permutation_invariant=True)
    model.build()
    with torch.no_grad():  # random weights say "nobody speaks" everywhere: lean the classifier towards speakers so
        # that both pipelines have turns to embed (the same ones: the model is shared)
        model.classifier.bias.copy_(torch.tensor([-2.0, 1.0, 0.8, 0.6, 0.0, 0.0, 0.0]))
    return model


def _ours():
    from dist_spk.config import load_config, to_dict
    from dist_spk.pipeline.embedding import SpeakerEncoderModel

    config = load_config("spk", preset_name="cluster")
    torch.manual_seed(SEED)
    return SpeakerEncoderModel(model=to_dict(config.model), frontend=to_dict(config.frontend)).eval(), config


def _resnet():
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34

    torch.manual_seed(SEED)
    model = WeSpeakerResNet34()
    model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=5.0)
    return model.eval()


def write_folders(root: Path) -> dict[str, Path]:
    """The two pipeline folders, in the layout ``evaluate pipeline --export`` writes."""
    from dist_spk.pipeline.model_folder import write_model_folder
    from dist_spk.pipeline.plda import identity_plda, save_plda

    segmentation = _segmentation()
    ours, config = _ours()
    folders = {"ours": (ours, "AgglomerativeClustering", False,
                        {"clustering": {"method": "centroid", "min_cluster_size": 12,
                                        "threshold": 0.7045654963945799}}),
               "community1": (_resnet(), "VBxClustering", True,
                              {"clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8}})}
    made = {}
    for name, (embedding, clustering, exclude_overlap, params) in folders.items():
        folder = root / name
        write_model_folder(segmentation, folder / "segmentation")
        write_model_folder(embedding, folder / "embedding")
        save_plda(folder / "plda", *identity_plda(embedding.dimension))
        config_yaml = {"pipeline": {"name": "pyannote.audio.pipelines.SpeakerDiarization", "params": {
            "segmentation": "$model/segmentation", "segmentation_batch_size": 32, "segmentation_step": 0.1,
            "embedding": "$model/embedding", "embedding_batch_size": 32, "embedding_exclude_overlap": exclude_overlap,
            "plda": "$model/plda", "clustering": clustering}},
            "params": {"segmentation": {"min_duration_off": 0.0}, **params}}
        (folder / "config.yaml").write_text(yaml.safe_dump(config_yaml, sort_keys=False))
        made[name] = folder
    return made


def _encoder_rate(model, *, batch: int = 16, seconds: float = 10.0) -> float:
    """Embeddings per second of ``model`` alone on full 10 s chunks with every frame active (no pair skipped)."""
    waves = 0.1 * torch.randn(batch, 1, int(seconds * 16000), generator=torch.Generator().manual_seed(SEED))
    weights = torch.ones(batch, 589)
    with torch.inference_mode():
        model(waves[:2], weights=weights[:2])  # warm-up
        started = time.perf_counter()
        model(waves, weights=weights)
    return batch / (time.perf_counter() - started)


def _embeddings_per_second(pipeline, file: dict, batch_size: int) -> tuple[float, int]:
    segmentations = pipeline.get_segmentations(file)
    pipeline.embedding_batch_size = batch_size
    started = time.perf_counter()
    embeddings = pipeline.get_embeddings(file, segmentations)
    count = embeddings.shape[0] * embeddings.shape[1]
    return count / (time.perf_counter() - started), count


def main() -> None:
    from pyannote.audio import Pipeline

    from dist_spk.pipeline.evaluate import with_waveform

    torch.set_num_threads(THREADS)
    files = sorted((corpus("small") / "diar" / "test" / "wav").glob("*.wav"))[:FILES]
    folders = write_folders(WORK / "pipeline_speed")
    pipelines = {name: Pipeline.from_pretrained(folder) for name, folder in folders.items()}
    prepared = [with_waveform({"uri": f.stem, "audio": str(f)}) for f in files]
    seconds = sum(f["waveform"].shape[1] / f["sample_rate"] for f in prepared)
    walls: dict[str, list[float]] = {name: [] for name in pipelines}
    speakers: dict[str, list[int]] = {name: [] for name in pipelines}
    for _ in range(ROUNDS):
        for name, pipeline in pipelines.items():
            started = time.perf_counter()
            outputs = [pipeline(dict(file)) for file in prepared]
            walls[name].append(time.perf_counter() - started)
            speakers[name] = [len(o.speaker_diarization.labels()) for o in outputs]
    rtf = {name: statistics.median(values) / seconds for name, values in walls.items()}
    ours = pipelines["ours"]
    segmentations = ours.get_segmentations(dict(prepared[0]))
    active = float((segmentations.data.sum(axis=1) > 0).mean())  # (chunk, speaker) pairs with any speech
    one, count = _embeddings_per_second(ours, dict(prepared[0]), 1)
    batched, _ = _embeddings_per_second(ours, dict(prepared[0]), 32)
    rate_ours = _encoder_rate(ours._embedding.model_)
    rate_resnet = _encoder_rate(pipelines["community1"]._embedding.model_)
    record("pipeline_speed", {
        "pipeline_rtf_ratio_vs_community1": round(rtf["ours"] / rtf["community1"], 3),
        "goal_ratio": "<= 1.0",
        "rtf_ours": round(rtf["ours"], 4), "rtf_community1_architecture": round(rtf["community1"], 4),
        "audio_seconds": round(seconds, 1), "files": len(files), "rounds": ROUNDS, "threads": THREADS,
        "wall_s_ours": [round(w, 2) for w in walls["ours"]],
        "wall_s_community1": [round(w, 2) for w in walls["community1"]],
        "embeddings_per_s_batched_32": round(batched, 1), "embeddings_per_s_one_chunk": round(one, 1),
        "embedding_batch_speedup": round(batched / one, 2), "embeddings_per_file": count,
        "our_encoder": "conformer, cluster preset (6 x 256, 192-d)",
        # why: our wrapper embeds only the (chunk, speaker) pairs with speech, pyannote's ResNet all of them; and
        # per embedding (10 s chunk, every frame active) the two encoders' own speed:
        "active_pair_fraction": round(active, 3),
        "encoder_embeddings_per_s_ours_all_active": round(rate_ours, 2),
        "encoder_embeddings_per_s_resnet34_all_active": round(rate_resnet, 2),
        "encoder_speed_ratio_ours_vs_resnet34": round(rate_resnet / rate_ours, 3),
        "hypothesis_speakers_ours": speakers["ours"], "hypothesis_speakers_community1": speakers["community1"],
    }, command="python -m bench.pipeline_speed")


if __name__ == "__main__":
    main()
