"""``dist-spk evaluate pipeline``: full-file DER of the diarization pipeline, optionally tuned first.

DER is pyannote.metrics' ``DiarizationErrorRate`` (optimal speaker mapping) over whole files within
their UEM, overlapped speech scored, at two forgiveness collars: none, and 0.25 s on each side of
every reference boundary (NIST md-eval's ``--collar 0.25``, which is pyannote.metrics' ``collar=0.5``:
pyannote takes the collar's total width). Each DER comes with its confusion, false alarm and miss.

Every report also scores two trivial baselines on the same files, so a figure can be judged: labelling
the whole scored region as one speaker, and labelling the *reference* speech (oracle voice activity)
as one speaker. A pipeline that does not beat the second has learnt nothing about who speaks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from dist_spk.data.layout import PYANNOTE_SUBSET
from dist_spk.errors import DistSpkError

SAMPLE = "pyannote:sample"  # --data value: the 30 s recording pyannote.audio ships (2 speakers, with RTTM)
COLLARS = {"collar_0": 0.0, "collar_0.25": 0.5}  # our name (seconds each side) -> pyannote.metrics collar
COMPONENTS = {"confusion": "confusion", "false_alarm": "false alarm", "miss": "missed detection"}


def pipeline_files(data: str | Path, split: str, *, protocol: str = "") -> list[dict]:
    """Fresh file dicts (uri, audio, annotation, annotated) of ``split``, or pyannote's sample."""
    if str(data) == SAMPLE:
        from pyannote.audio.sample import SAMPLE_FILE

        return [{key: SAMPLE_FILE[key] for key in ("uri", "audio", "annotation", "annotated")}]
    from dist_spk.data.protocol import load_protocol, protocol_files

    if split not in PYANNOTE_SUBSET:
        raise DistSpkError(f"unknown split {split!r}; valid: {', '.join(PYANNOTE_SUBSET)}")
    files = protocol_files(load_protocol(data, protocol), PYANNOTE_SUBSET[split])
    if not files:
        raise DistSpkError(f"{data}: the {split} split has no files")
    return [{"uri": f["uri"], "audio": f["audio"], "annotation": f["annotation"], "annotated": f["annotated"]}
            for f in files]


def _one_speaker(timeline) -> Any:
    """An Annotation labelling every region of ``timeline`` as the same speaker."""
    from pyannote.core import Annotation

    annotation = Annotation(uri=timeline.uri)
    for segment in timeline.support():
        annotation[segment] = "speaker"
    return annotation


# name -> file -> hypothesis; the names are the report's keys
BASELINES = {
    "one_speaker_whole_file": lambda file: _one_speaker(file["annotated"]),
    "one_speaker_oracle_speech": lambda file: _one_speaker(file["annotation"].get_timeline()),
}


def baseline_reports(files: list[dict]) -> dict[str, dict[str, Any]]:
    """The overall DER report of each trivial baseline on ``files``."""
    return {name: der_report([(file, hypothesis(file)) for file in files])["overall"]
            for name, hypothesis in BASELINES.items()}


def der_report(results: list[tuple[dict, Any]]) -> dict[str, Any]:
    """Per-file and overall DER with its components at each collar, for (file, hypothesis) pairs."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    metrics = {name: DiarizationErrorRate(collar=collar, skip_overlap=False) for name, collar in COLLARS.items()}
    per_file = []
    for file, hypothesis in results:
        row: dict[str, Any] = {"uri": file["uri"], "scored_seconds": file["annotated"].duration(),
                               "speakers": len(file["annotation"].labels()),
                               "hypothesis_speakers": len(hypothesis.labels())}
        for name, metric in metrics.items():
            detail = metric(file["annotation"], hypothesis, uem=file["annotated"], detailed=True)
            row[name] = _rates(detail)
        per_file.append(row)
    overall = {name: _rates({key: metric[key] for key in ("total", *COMPONENTS.values())})
               for name, metric in metrics.items()}
    return {"overall": overall, "files": per_file}


def _rates(components: dict) -> dict[str, float]:
    total = components["total"]
    rates = {ours: components[theirs] / total if total else 0.0 for ours, theirs in COMPONENTS.items()}
    return {"der": sum(rates.values()), **rates, "speech_seconds": total}


def with_waveform(file: dict) -> dict:
    """The file with its audio decoded once, in memory.

    pyannote's pipeline reads every (chunk, speaker) crop for the embeddings from the file, opening
    a decoder each time; with the waveform in the file dict it slices memory instead.
    """
    from pyannote.audio.core.io import Audio

    if "waveform" in file:
        return dict(file)
    waveform, sample_rate = Audio(sample_rate=16000, mono="downmix")(file)
    return {**file, "waveform": waveform, "sample_rate": sample_rate}


def diarize(pipeline, files: list[dict], *, desc: str) -> list[tuple[dict, Any]]:
    from tqdm import tqdm

    return [(file, pipeline(with_waveform(file))) for file in tqdm(files, desc=desc, unit="file", leave=False,
                                                                   disable=None)]  # None: on a terminal only


def write_rttms(results: list[tuple[dict, Any]], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for file, hypothesis in results:
        with (folder / f"{file['uri']}.rttm").open("w") as handle:
            hypothesis.write_rttm(handle)


def evaluate_pipeline(segmentation: str | Path, embedding: str | Path, data: str | Path, *, split: str = "test",
                      tune_on: str | None = None, iterations: int = 100, protocol: str = "", seed: int = 0,
                      rttm_dir: Path | None = None, clustering: str = "agglomerative", plda: str | Path | None = None,
                      device: str = "cpu", export: Path | None = None, force: bool = False,
                      stages=None) -> dict[str, Any]:
    """Diarize ``split`` with the untuned defaults and, after tuning on ``tune_on``, with the tuned parameters.

    Returns a JSON-ready dict: ``default`` (params, DER report), ``tuned`` (params, DER report, the
    tuning objective per iteration) when ``tune_on`` is given, and ``final`` naming which of them the
    RTTMs in ``rttm_dir`` hold. ``stages`` (a :class:`dist_spk.console.Stages`) numbers the steps on the console.
    With ``export``, the final pipeline is written there as a folder pyannote loads (:mod:`dist_spk.pipeline.export`,
    checked before anything runs).
    """
    import contextlib

    from dist_spk.pipeline.diarization import build_pipeline, tune_pipeline

    def stage(title: str):
        return stages.stage(title) if stages is not None else contextlib.nullcontext()

    if export is not None:
        from dist_spk.pipeline.export import check_export_target

        check_export_target(export, force=force)
    files = pipeline_files(data, split, protocol=protocol)
    tuning_files = pipeline_files(data, tune_on, protocol=protocol) if tune_on else []
    started = time.perf_counter()
    pipeline = build_pipeline(segmentation, embedding, clustering=clustering, plda=plda, device=device)
    report: dict[str, Any] = {"data": str(data), "split": split, "segmentation": str(segmentation),
                              "embedding": str(embedding), "clustering": clustering,
                              "plda": str(plda) if plda is not None else None, "device": device,
                              "baselines": baseline_reports(files)}
    with stage(f"diarizing {len(files)} {split} file(s) with the default parameters"):
        default_results = diarize(pipeline, files, desc=f"diarizing {split} (default params)")
    report["default"] = {"params": pipeline.parameters(instantiated=True), **der_report(default_results)}
    final = default_results
    if tune_on:
        with stage(f"tuning the pipeline on {len(tuning_files)} {tune_on} file(s), {iterations} iterations"):
            params, history = tune_pipeline(pipeline, [with_waveform(f) for f in tuning_files],
                                            iterations=iterations, seed=seed)
        with stage(f"diarizing the {split} files with the tuned parameters"):
            tuned_results = diarize(pipeline, files, desc=f"diarizing {split} (tuned params)")
        report["tuned"] = {"params": params, "tuned_on": tune_on, "iterations": iterations,
                           "objective_history": history, **der_report(tuned_results)}
        final = tuned_results
    report["final"] = "tuned" if tune_on else "default"
    if rttm_dir is not None:
        write_rttms(final, rttm_dir)
        report["rttm_dir"] = str(rttm_dir)
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    if export is not None:
        from dist_spk.pipeline.export import export_pipeline, pipeline_card

        report["export"] = str(export)
        export_pipeline(pipeline, export, clustering=clustering, params=report[report["final"]]["params"], plda=plda,
                        card=pipeline_card(report, export, plda=plda), force=force)
    return report


def print_report(report: dict[str, Any]) -> None:
    """Per-file table of the final parameters, then the overall DER of each parameter set."""
    from rich import box
    from rich.table import Table

    from dist_spk.console import rich_console

    final = report[report["final"]]
    table = Table(title=f"{report['split']}: DER per file ({report['final']} params)", box=box.SIMPLE_HEAD)
    for column in ("file", "scored s", "spk ref/hyp", "DER", "confusion", "false alarm", "miss", "DER ±0.25 s"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for row in final["files"]:
        c0 = row["collar_0"]
        table.add_row(row["uri"], f"{row['scored_seconds']:.1f}", f"{row['speakers']}/{row['hypothesis_speakers']}",
                      f"{c0['der']:.2%}", f"{c0['confusion']:.2%}", f"{c0['false_alarm']:.2%}", f"{c0['miss']:.2%}",
                      f"{row['collar_0.25']['der']:.2%}")
    console = rich_console()
    console.print(table)
    rows = [(name, report[name]["overall"], json.dumps(report[name]["params"]))
            for name in ("default", "tuned") if name in report]
    rows += [(f"baseline: {name.replace('_', ' ')}", overall, "") for name, overall in report["baselines"].items()]
    width = max(len(name) for name, _, _ in rows)
    for name, overall, params in rows:
        c0, c25 = overall["collar_0"], overall["collar_0.25"]
        console.print(f"{name:>{width}}: DER {c0['der']:.2%} (confusion {c0['confusion']:.2%}, false alarm "
                      f"{c0['false_alarm']:.2%}, miss {c0['miss']:.2%}); with ±0.25 s collars {c25['der']:.2%}"
                      + (f"   params {params}" if params else ""))
