"""A tuned diarization pipeline as a folder pyannote loads: ``Pipeline.from_pretrained(DIR)``.

The layout of pyannote 4's hub pipelines (speaker-diarization-community-1)::

    DIR/config.yaml                  pipeline.name + its params ($model/segmentation, $model/embedding, $model/plda),
                                     the tuned ``params:``, and ``dependencies`` (pyannote.audio, dist-spk)
    DIR/segmentation/pytorch_model.bin   the fine-tuned PyanNet
    DIR/embedding/pytorch_model.bin      our speaker encoder (dist_spk.pipeline.embedding.SpeakerEncoderModel)
    DIR/plda/xvec_transform.npz, plda.npz    with VBx: the PLDA fitted to our encoder; otherwise an identity PLDA
                                     (pyannote's SpeakerDiarization loads one whatever the clustering; only VBx uses it)
    DIR/README.md                    the model card

``pipeline.name`` is pyannote's own ``SpeakerDiarization`` for its clusterings (agglomerative, VBx) and ours
(:class:`dist_spk.pipeline.diarization.SpeakerDiarization`) for HDBSCAN and bisecting k-means. pyannote imports the
encoder's class by the name its checkpoint records, so loading needs dist_spk installed, never imported by the user.
"""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from dist_spk.errors import DistSpkError

PARTS = ("config.yaml", "segmentation", "embedding", "plda", "README.md")
PYANNOTE_PIPELINE = "pyannote.audio.pipelines.SpeakerDiarization"
OUR_PIPELINE = "dist_spk.pipeline.diarization.SpeakerDiarization"


def check_export_target(out: Path, *, force: bool = False) -> None:
    """Refuse to write over anything in ``out`` unless ``force``; with ``force``, only an earlier export's parts are
    replaced (other files in ``out``, e.g. a report, are kept; an export cut short, which left its staging folder,
    counts as an earlier export). Called before any work starts."""
    if out.exists() and not out.is_dir():
        raise DistSpkError(f"--export {out}: exists and is not a folder")
    existing = [name for name in PARTS if (out / name).exists()]
    if existing and not force:
        raise DistSpkError(f"--export {out} already holds {', '.join(existing)}; choose another folder or pass "
                           "--force to replace that export")
    if existing and not (out / "config.yaml").is_file() and not (out / ".export.partial").is_dir():
        raise DistSpkError(f"--export {out}: holds {', '.join(existing)} but no config.yaml: not an earlier export, "
                           "not replaced")


def pipeline_config(pipeline, *, clustering: str, params: dict[str, Any]) -> dict[str, Any]:
    """The ``config.yaml`` of an exported pipeline."""
    from dist_spk.pipeline.diarization import CLUSTERING_CLASSES, DEFAULT_PARAMS

    own = clustering in ("hdbscan", "bisecting_kmeans")
    params = {section: dict(values) for section, values in params.items()}
    if clustering == "agglomerative":  # frozen while tuning, a parameter of the folder (as in pyannote's 3.1)
        params.setdefault("clustering", {}).setdefault("method", DEFAULT_PARAMS["clustering"]["method"])
    dependencies = {"pyannote.audio": metadata.version("pyannote.audio"), "dist-spk": metadata.version("dist-spk")}
    return {
        "pipeline": {
            "name": OUR_PIPELINE if own else PYANNOTE_PIPELINE,
            "params": {
                "segmentation": "$model/segmentation",
                "segmentation_step": float(pipeline.segmentation_step),
                "segmentation_batch_size": int(pipeline.segmentation_batch_size),
                "embedding": "$model/embedding",
                "embedding_batch_size": int(pipeline.embedding_batch_size),
                "embedding_exclude_overlap": bool(pipeline.embedding_exclude_overlap),
                "plda": "$model/plda",
                "clustering": CLUSTERING_CLASSES[clustering],
            },
        },
        "params": _plain(params),
        "dependencies": dependencies,
    }


def _plain(value: Any) -> Any:
    """numpy scalars and nested dicts as plain YAML values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item"):
        return value.item()
    return value


def export_pipeline(pipeline, out: Path, *, clustering: str, params: dict[str, Any], plda: str | Path | None,
                    card: str, force: bool = False) -> Path:
    """Write ``pipeline`` (built by :func:`dist_spk.pipeline.diarization.build_pipeline`) with ``params`` into
    ``out``. Every part is staged in ``out/.export.partial`` first and moved in last: an interrupted export leaves
    no config.yaml, so it never looks complete."""
    from dist_spk.pipeline.model_folder import write_model_folder
    from dist_spk.pipeline.plda import PLDA_FILE, TRANSFORM_FILE, identity_plda, save_plda
    from dist_spk.runs.files import write_text

    check_export_target(out, force=force)
    staging = out / ".export.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_model_folder(pipeline._segmentation.model, staging / "segmentation")
    embedding = pipeline._embedding.model_
    write_model_folder(embedding, staging / "embedding")
    if plda is not None:
        (staging / "plda").mkdir()
        for name in (TRANSFORM_FILE, PLDA_FILE, "plda.json"):
            if (Path(plda) / name).is_file():
                shutil.copyfile(Path(plda) / name, staging / "plda" / name)
    else:
        save_plda(staging / "plda", *identity_plda(embedding.dimension),
                  about={"note": f"an identity PLDA: this pipeline clusters with {clustering}, which does not use it; "
                                 "pyannote's SpeakerDiarization loads a PLDA whatever its clustering"})
    config = pipeline_config(pipeline, clustering=clustering, params=params)
    (staging / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_text(staging / "README.md", card)
    for name in PARTS:  # config.yaml last: until it lands, the folder is not a pipeline
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for name in (*[p for p in PARTS if p != "config.yaml"], "config.yaml"):
        (staging / name).replace(out / name)
    staging.rmdir()
    return out


def pipeline_card(report: dict[str, Any], out: Path, *, plda: str | Path | None) -> str:
    """The model card of an exported pipeline, from ``dist-spk evaluate pipeline``'s report."""
    from dist_spk.pipeline.evaluate import SAMPLE
    from dist_spk.runs.card import dataset_fingerprint, markdown_table, provenance, provenance_section, render_card

    final_name = report["final"]
    final = report[final_name]
    rows = []
    for name, label in ((final_name, f"this pipeline ({final_name} parameters)"),
                        *((("default", "untuned defaults"),) if final_name == "tuned" else ())):
        c0, c25 = report[name]["overall"]["collar_0"], report[name]["overall"]["collar_0.25"]
        rows.append((label, f"{c0['der']:.2%}", f"{c0['confusion']:.2%}", f"{c0['false_alarm']:.2%}",
                     f"{c0['miss']:.2%}", f"{c25['der']:.2%}"))
    for name, overall in report["baselines"].items():
        c0, c25 = overall["collar_0"], overall["collar_0.25"]
        rows.append((f"baseline: {name.replace('_', ' ')}", f"{c0['der']:.2%}", f"{c0['confusion']:.2%}",
                     f"{c0['false_alarm']:.2%}", f"{c0['miss']:.2%}", f"{c25['der']:.2%}"))
    data = report["data"]
    fingerprint = "" if data == SAMPLE or not Path(data).exists() else (
        " (sha256 `{sha256:.16}...` over {files} files; {covers})".format(**dataset_fingerprint(data)))
    tuning = (f"tuned on the `{final['tuned_on']}` split: {final['iterations']} iterations of Optuna TPE on "
              "pyannote's DER" if final_name == "tuned" else "untuned: the default parameters")
    sources = [provenance_section(name, provenance(report[name], _config_dir(report[name])))
               for name in ("segmentation", "embedding")]
    if plda is not None:
        sources.append(f"### PLDA\n\n- fitted by `dist-spk train plda` in `{plda}`")
    files = len(final["files"])
    sections = [
        "## Quality", "",
        f"DER on the `{report['split']}` split of `{data}`{fingerprint}, {files} file(s), pyannote.metrics with the "
        "optimal speaker mapping, overlapped speech scored, no forgiveness collar (last column: ±0.25 s):", "",
        markdown_table(rows, ("", "DER", "confusion", "false alarm", "miss", "DER ±0.25 s")), "",
        f"Parameters, {tuning}:", "", "```yaml", yaml.safe_dump(_plain(final["params"]), sort_keys=True).rstrip(),
        "```", "", "## Where it came from", "", "\n\n".join(sources)]
    summary = (f"A speaker-diarization pipeline (pyannote.audio {metadata.version('pyannote.audio')}'s "
               f"SpeakerDiarization) with a fine-tuned PyanNet segmentation model, a dist_spk speaker encoder and "
               f"{report['clustering']} clustering; {tuning}.")
    usage = (f'from pyannote.audio import Pipeline\n'
             f'pipeline = Pipeline.from_pretrained("{out}")  # needs dist_spk installed, not imported\n'
             f'output = pipeline("meeting.wav")  # or: dist-spk diarize meeting.wav --pipeline {out} --out rttm/\n'
             f'output.speaker_diarization.write_rttm(open("meeting.rttm", "w"))')
    return render_card("dist_spk speaker-diarization pipeline", summary, sections, usage)


def _config_dir(checkpoint: str) -> Path | None:
    from dist_spk.runs.run_dir import resolve_checkpoint

    try:
        return resolve_checkpoint(checkpoint)[1]
    except DistSpkError:  # a hub id: no config of ours
        return None
