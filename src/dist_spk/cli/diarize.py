"""``dist-spk diarize``: a shipped pipeline on new audio (no reference needed), one RTTM per file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dist_spk.cli.app import Device, app
from dist_spk.errors import DistSpkError


def _speaker_counts(num: int | None, low: int | None, high: int | None) -> None:
    for name, value in (("--num-speakers", num), ("--min-speakers", low), ("--max-speakers", high)):
        if value is not None and value < 1:
            raise DistSpkError(f"{name} must be at least 1, got {value}")
    if num is not None and (low is not None or high is not None):
        raise DistSpkError("--num-speakers fixes the count: drop --min-speakers / --max-speakers")
    if low is not None and high is not None and low > high:
        raise DistSpkError(f"--min-speakers {low} is above --max-speakers {high}")


@app.command("diarize")
def diarize(
    audio: Annotated[list[Path], typer.Argument(help="Audio files, folders (searched for audio files) or text files "
                                                "listing audio paths.")],
    pipeline: Annotated[str, typer.Option(help="A pipeline folder (dist-spk evaluate pipeline --export DIR) or a hub "
                                          "id, e.g. pyannote/speaker-diarization-community-1 (with $HF_TOKEN).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for one <uri>.rttm per file (uri: the file's "
                                      "stem).")],
    num_speakers: Annotated[int | None, typer.Option(help="The exact number of speakers in every file.")] = None,
    min_speakers: Annotated[int | None, typer.Option(help="At least this many speakers per file.")] = None,
    max_speakers: Annotated[int | None, typer.Option(help="At most this many speakers per file.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Diarize again files whose RTTM exists in --out "
                                            "(default: skip them).")] = False,
    device: Device = "auto",
) -> None:
    """Diarize audio with a tuned pipeline: pyannote's Pipeline.from_pretrained, the same RTTMs as in Python."""
    from dist_spk.console import internals_to, rich_console
    from dist_spk.cuda import resolve_device
    from dist_spk.pipeline.apply import by_uri, check_readable, collect_audio, diarize_files, load_pipeline

    _speaker_counts(num_speakers, min_speakers, max_speakers)
    if out.exists() and not out.is_dir():
        raise DistSpkError(f"--out {out}: exists and is not a folder")
    files = by_uri(collect_audio(audio))
    durations = check_readable(files)
    device = resolve_device(device)
    with internals_to(out / "logs" / "diarize.log", deferred=True) as log:  # a refused pipeline leaves no folder
        loaded = load_pipeline(pipeline, device=device)
        log.open()
        results = diarize_files(loaded, files, out, num_speakers=num_speakers, min_speakers=min_speakers,
                                max_speakers=max_speakers, overwrite=overwrite)
    done = [r for r in results if not r.skipped]
    skipped = [r for r in results if r.skipped]
    console = rich_console()
    for result in done:
        console.print(f"{result.rttm}: {result.speakers} speaker(s), {result.seconds:.1f} s of speech in "
                      f"{durations[result.uri]:.1f} s")
    if skipped:
        console.print(f"skipped {len(skipped)} file(s) whose RTTM exists in {out} (--overwrite diarizes them again)")
    console.print(f"diarized {len(done)} file(s) ({sum(durations[r.uri] for r in done) / 60:.1f} min of audio) with "
                  f"{pipeline} on {device}: RTTMs in {out}/")
