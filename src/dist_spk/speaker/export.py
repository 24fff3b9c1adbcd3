"""``dist-spk export spk``: the trained encoder in the formats other tools load, each checked against the checkpoint.

- ``onnx``: ``embeddings = session.run(None, {"waves": (B, N) float32, "lengths": (B,) int64})[0]`` -> (B, E), with
  onnxruntime and nothing else; batch and length are dynamic (exported with ``torch.export``'s dynamic shapes);
- ``torchscript``: ``torch.jit.load(path)(waves, lengths)`` -> (B, E), no dist_spk / speechbrain / Lightning needed;
- ``pyannote``: a model folder (``pytorch_model.bin``) that ``pyannote.audio.Model.from_pretrained`` loads (our
  :class:`~dist_spk.pipeline.embedding.SpeakerEncoderModel`, rebuilt from its hyper-parameters).

``waves`` are 16 kHz mono, zero-padded to the longest; ``lengths`` their lengths in samples. After writing, the
export is run on a ragged batch (waves of different lengths in one batch) and compared with the checkpoint: an
export further than 1e-4 relative error from it is deleted and refused. Each export writes a model card beside it.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np
import torch

from dist_spk.errors import DistSpkError
from dist_spk.speaker.inference import _Exportable, load_speaker_module

FORMATS = ("onnx", "torchscript", "pyannote")
TOLERANCE = 1e-4  # relative error, per embedding
PARITY_SECONDS = (3.0, 1.7, 2.4)  # the ragged batch every export is checked on


def _length_to_mask(length, max_len=None, dtype=None, device=None):
    """speechbrain's ``length_to_mask`` with the batch size broadcast instead of read with ``len(length)``.

    Tracing (TorchScript) records ``len(length)`` as a constant, which fixes the batch size of the export; this
    computes the same mask for any batch. Used only while exporting (:func:`_batch_friendly`).
    """
    if max_len is None:
        max_len = length.max().long().item()
    mask = torch.arange(max_len, device=length.device, dtype=length.dtype)[None, :] < length[:, None]
    return mask.to(dtype=dtype or length.dtype, device=device or length.device)


@contextlib.contextmanager
def _batch_friendly():
    """speechbrain's pooling (ours and ECAPA's) with :func:`_length_to_mask`, for the length of an export."""
    from unittest import mock

    with mock.patch("speechbrain.lobes.models.ECAPA_TDNN.length_to_mask", _length_to_mask):
        yield


def parity_batch(*, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(waves (B, N) zero-padded, lengths (B,)) of :data:`PARITY_SECONDS`: seeded noise shaped like speech
    (a decaying low-pass), so features are not flat."""
    rng = np.random.default_rng(seed)
    lengths = [int(s * 16000) for s in PARITY_SECONDS]
    waves = torch.zeros(len(lengths), max(lengths))
    for row, length in enumerate(lengths):
        noise = rng.standard_normal(length).astype(np.float32)
        smooth = np.convolve(noise, np.ones(8, dtype=np.float32) / 8, mode="same")
        waves[row, :length] = torch.from_numpy(0.1 * smooth * np.sin(np.linspace(0, 40, length)) ** 2)
    return waves, torch.tensor(lengths, dtype=torch.int64)


def relative_error(found: np.ndarray, expected: np.ndarray) -> float:
    """The largest per-embedding relative error ``|found - expected| / |expected|``."""
    return float((np.linalg.norm(found - expected, axis=1) / np.linalg.norm(expected, axis=1)).max())


def _write_onnx(exportable: torch.nn.Module, example: tuple[torch.Tensor, torch.Tensor], out: Path) -> None:
    import io
    import warnings
    from contextlib import redirect_stdout

    batch, samples = torch.export.Dim("batch"), torch.export.Dim("samples", min=8000)
    # the exporter narrates every pass on stdout and warns about its own internals (deprecations inside torch)
    with _batch_friendly(), redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(exportable, example, str(out), input_names=["waves", "lengths"],
                          output_names=["embeddings"], dynamo=True, verbose=False,
                          dynamic_shapes={"waves": {0: batch, 1: samples}, "lengths": {0: batch}})


def _run_onnx(path: Path, waves: torch.Tensor, lengths: torch.Tensor) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"waves": waves.numpy(), "lengths": lengths.numpy()})[0]


def _write_torchscript(exportable: torch.nn.Module, example: tuple[torch.Tensor, torch.Tensor], out: Path) -> None:
    import warnings

    with _batch_friendly(), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings on shape arithmetic that holds for every input
        traced = torch.jit.trace(exportable, example, check_trace=False)
    traced.save(str(out))


def _run_torchscript(path: Path, waves: torch.Tensor, lengths: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return torch.jit.load(str(path))(waves, lengths).numpy()


def _write_pyannote(module, out: Path) -> None:
    from dist_spk.config.typed import to_dict
    from dist_spk.pipeline.embedding import SpeakerEncoderModel
    from dist_spk.pipeline.model_folder import write_model_folder

    model = SpeakerEncoderModel(model=to_dict(module.config.model), frontend=to_dict(module.config.frontend))
    model.encoder.load_state_dict(module.encoder.state_dict())
    write_model_folder(model, out)


def _run_pyannote(path: Path, waves: torch.Tensor, lengths: torch.Tensor) -> np.ndarray:
    from pyannote.audio import Model

    model = Model.from_pretrained(path).eval()  # pyannote's own loader: the folder must stand on its own
    with torch.inference_mode():  # the folder takes one wave per row, all of one length: one at a time here
        return np.concatenate([model(waves[i : i + 1, None, : int(n)]).numpy() for i, n in enumerate(lengths)])


def export_encoder(checkpoint: str | Path, out: str | Path, *, format: str = "onnx", force: bool = False
                   ) -> tuple[Path, float]:
    """Export the encoder of ``checkpoint`` to ``out``; return (out, its relative error on the parity batch).

    Refuses an existing ``out`` unless ``force`` (then only a file, or a folder holding ``pytorch_model.bin``, is
    replaced). Writes ``out`` and its card, or nothing.
    """
    from dist_spk.runs.run_dir import resolve_checkpoint

    if format not in FORMATS:
        raise DistSpkError(f"--format {format!r}: expected one of {', '.join(FORMATS)}")
    out = Path(out)
    _check_target(out, format, force=force)
    module = load_speaker_module(checkpoint)
    waves, lengths = parity_batch()
    with torch.inference_mode():
        expected = torch.cat([module.encoder(waves[i : i + 1, : int(n)], lengths[i : i + 1])
                              for i, n in enumerate(lengths)]).numpy()  # one wave at a time: no padding at all
    exportable = _Exportable(module).eval()
    example = (waves[:2, : int(lengths[1])].clone(), lengths[:2].clamp(max=int(lengths[1])))
    staging = out.with_name(f".{out.name}.partial")
    _remove(staging)
    try:
        if format == "onnx":
            _write_onnx(exportable, example, staging)
            found = _run_onnx(staging, waves, lengths)
        elif format == "torchscript":
            _write_torchscript(exportable, example, staging)
            found = _run_torchscript(staging, waves, lengths)
        else:
            _write_pyannote(module, staging)
            found = _run_pyannote(staging, waves, lengths)
        error = relative_error(found, expected)
        if not error <= TOLERANCE:
            raise DistSpkError(f"{format} export of {checkpoint} differs from the checkpoint by {error:.2e} "
                               f"(relative, > {TOLERANCE:g}) on a ragged batch: not written")
    except DistSpkError:
        _remove(staging)
        raise
    except Exception as err:  # an exporter failure deep inside torch.export / onnxscript
        _remove(staging)
        raise DistSpkError(f"{format} export of {checkpoint} failed: {type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}") from None
    _remove(out)
    staging.replace(out)
    _write_card(out, format, checkpoint, module, error, resolve_checkpoint(checkpoint)[1])
    return out, error


def card_path(out: Path, format: str) -> Path:
    """Where an export's card goes: inside a pyannote folder, beside a file (``encoder.onnx.README.md``)."""
    return out / "README.md" if format == "pyannote" else out.with_name(f"{out.name}.README.md")


def _check_target(out: Path, format: str, *, force: bool) -> None:
    if not out.exists() and not out.is_symlink():
        return
    if not force:
        raise DistSpkError(f"{out} already exists; choose another -o or pass --force to replace it")
    ours = out.is_file() if format != "pyannote" else (out / "pytorch_model.bin").is_file()
    if not ours:
        raise DistSpkError(f"{out}: not a {format} export (--force replaces only an earlier export)")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


USAGE = {
    "onnx": ('import numpy, onnxruntime, soundfile\n'
             'session = onnxruntime.InferenceSession("{name}")\n'
             'wave, _ = soundfile.read("speech.wav", dtype="float32")  # 16 kHz mono\n'
             'inputs = {{"waves": wave[None], "lengths": numpy.array([len(wave)])}}\n'
             'embedding = session.run(None, inputs)[0]  # (1, {emb})'),
    "torchscript": ('import torch, soundfile\n'
                    'encoder = torch.jit.load("{name}")\n'
                    'wave, _ = soundfile.read("speech.wav", dtype="float32")  # 16 kHz mono\n'
                    'embedding = encoder(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))  # (1, {emb})'),
    "pyannote": ('from pyannote.audio import Inference, Model\n'
                 'model = Model.from_pretrained("{name}")  # dist_spk must be installed\n'
                 'embedding = Inference(model, window="whole")("speech.wav")  # ({emb},)'),
}


def _write_card(out: Path, format: str, checkpoint, module, error: float, config_dir: Path | None) -> None:
    from dist_spk.runs.card import markdown_table, provenance, provenance_section, render_card
    from dist_spk.runs.files import write_text

    source = provenance(checkpoint, config_dir)
    best = source.best_metrics
    rows = [(name, f"{best[name]:.4f}" if isinstance(best.get(name), int | float) else "-", chance)
            for name, chance in (("eer", "0.5000 (chance)"), ("min_dcf", "1.0000 (no decision)"))]
    config = module.config
    summary = (f"A {config.model.arch} speaker encoder ({config.model.emb_size}-d embeddings, AAM-softmax "
               f"margin {config.head.margin:g}, scale {config.head.scale:g}) exported to {format} by dist_spk. "
               f"Input: 16 kHz mono waves, zero-padded, with their lengths; output: one embedding per wave "
               "(compare with cosine similarity).")
    sections = ["## Quality", "", "Held-out speakers' trials at the best validation epoch:", "",
                markdown_table(rows, ("metric", "this encoder", "trivial baseline")), "",
                f"Export parity: the largest relative error against the checkpoint on a ragged batch of "
                f"{len(PARITY_SECONDS)} waves ({', '.join(f'{s:g} s' for s in PARITY_SECONDS)}) is "
                f"{error:.1e} (limit {TOLERANCE:g}).", "", "## Where it came from", "",
                provenance_section("speaker encoder", source)]
    usage = USAGE[format].format(name=out.name, emb=config.model.emb_size)
    write_text(card_path(out, format), render_card(f"dist_spk speaker encoder ({format})", summary, sections, usage))
