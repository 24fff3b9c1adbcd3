"""The demo workflow (``dist-spk demo``, ``make demo``): synthesise or check the demo corpus, the starting
segmentation model, an ASHA search per task, the best models on held-out data, and the two as one tuned
diarization pipeline; each step a numbered stage, then a closing summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dist_spk.errors import DistSpkError


def run_demo(stages, out: Path, *, size: str, seed: int, echo: Callable[[str], None] = print) -> None:
    """The demo's six stages (``stages``: a :class:`dist_spk.console.Stages`), then its summary."""
    import json

    from dist_spk.data.check import check_diarization
    from dist_spk.data.report import print_report
    from dist_spk.data.speakers import check_speakers, load_speakers
    from dist_spk.data.synth import synthesize
    from dist_spk.launch.pretrained import pretrained_segmentation
    from dist_spk.pipeline.evaluate import evaluate_pipeline
    from dist_spk.segmentation.evaluate import evaluate_segmentation
    from dist_spk.speaker.inference import evaluate_speaker

    corpus = out / "corpus"
    made = (corpus / "corpus.json").is_file()
    with stages.stage(f"the demo corpus in {corpus}: " + ("checking it" if made else f"synthesising ({size})")):
        if not made:
            synthesize(corpus, seed=seed, size=size)
        report = check_diarization(corpus / "diar")
        rows = {split: stats.as_row() for split, stats in report.stats.items()}
        speakers = check_speakers(load_speakers(corpus / "spk"), trials_path=corpus / "spk" / "trials.txt")
        if print_report(f"demo corpus {corpus / 'diar'}", rows, report.problems + speakers.problems, json_out=None):
            raise DistSpkError(f"{corpus}: the demo corpus has errors (above); delete it to synthesise it again")
        echo(f"speaker data {corpus / 'spk'}: {len(speakers.manifest.speakers())} speakers, "
             f"{len(speakers.manifest.utterances)} utterances, {len(speakers.trials)} held-out trials")
    with stages.stage("the starting segmentation model (as teams fine-tune pyannote/segmentation-3.0)"):
        start = pretrained_segmentation(log=echo)  # trained once per machine, then cached
        echo(f"segmentation trials fine-tune {start}")
    with stages.stage("searching segmentation hyper-parameters (ASHA, 6 trials, Ray on this machine)"):
        _demo_search("seg", echo, corpus / "diar", out / "tune-seg", f"model.init={start}", "trainer.epochs=3",
                     "search.grace_period=1")
        _print_baseline_check(out / "tune-seg", echo)
    with stages.stage("searching speaker-encoder hyper-parameters (ASHA, 6 trials)"):
        # its noise augmentation mixes the corpus's own noises (hum, babble, coloured noise)
        _demo_search("spk", echo, corpus / "spk", out / "tune-spk", f"data.noise_dir={(corpus / 'noise').resolve()}")
    seg_best, spk_best = out / "tune-seg" / "best", out / "tune-spk" / "best"
    with stages.stage("scoring the best models on held-out data (test conversations, unseen voices)"):
        seg = evaluate_segmentation(seg_best / "checkpoint.ckpt", corpus / "diar", split="test")
        (seg_best / "test_metrics.json").write_text(json.dumps(seg, indent=1))
        spk = evaluate_speaker(spk_best / "checkpoint.ckpt", corpus / "spk", corpus / "spk" / "trials.txt")
        (spk_best / "test_metrics.json").write_text(json.dumps(spk, indent=1))
    with stages.stage("the two best models as one diarization pipeline: tuned on dev, scored on test"):
        # the demo owns OUT/pipeline: an earlier run's export there is replaced
        pipeline = evaluate_pipeline(seg_best, spk_best, corpus / "diar", split="test", tune_on="dev", iterations=50,
                                     rttm_dir=out / "pipeline" / "rttm", export=out / "pipeline", force=True)
        (out / "pipeline" / "report.json").write_text(json.dumps(pipeline, indent=1))
    oracle = f"{pipeline['baselines']['one_speaker_oracle_speech']['collar_0']['der']:.1%} (one speaker, oracle speech)"
    tuned = pipeline["tuned"]["overall"]["collar_0"]
    stages.summary(f"demo done: {out}", figures=[
        ("pipeline DER, test files (tuned on dev)", f"{tuned['der']:.1%}", oracle),
        ("  confusion / false alarm / miss",
         f"{tuned['confusion']:.1%} / {tuned['false_alarm']:.1%} / {tuned['miss']:.1%}", ""),
        ("pipeline DER, default parameters", f"{pipeline['default']['overall']['collar_0']['der']:.1%}", ""),
        ("segmentation DER, test chunks", f"{seg['DiarizationErrorRate']:.1%}",
         f"{seg.get('DiarizationErrorRate/OneSpeakerOracleSpeech', float('nan')):.1%} (one speaker, oracle speech)"),
        ("speaker EER, held-out voices", f"{spk['eer']:.1%}", "50.0% (chance)"),
    ], produced=[
        ("searches", f"{out / 'tune-seg'}, {out / 'tune-spk'} (summary.csv, plots/, optuna.journal)"),
        ("best models", f"{seg_best}, {spk_best}"),
        ("pipeline", f"{out / 'pipeline'} (pyannote pipeline folder + README.md model card; report.json, rttm/)"),
        ("logs", f"{out / 'logs'}, {out / 'tune-seg' / 'logs'}, {out / 'tune-spk' / 'logs'}"),
    ], next_steps=[
        f"dist-spk diarize YOUR_AUDIO --pipeline {out / 'pipeline'} --out rttm/   (new audio, no reference needed)",
        f"python -c \"from pyannote.audio import Pipeline; p = Pipeline.from_pretrained('{out / 'pipeline'}'); "
        "print(p('meeting.wav').speaker_diarization)\"",
        f"dist-spk report {out / 'tune-seg'}   (tables and plots of a search)",
        f"optuna-dashboard {out / 'tune-seg' / 'optuna.journal'}",
        "dist-spk tune seg --data YOUR_DATA --out EXP --preset cluster   (on your data; README: cluster)",
    ])


def _print_baseline_check(exp: Path, echo: Callable[[str], None]) -> None:
    """The segmentation trials beside the trivial baselines on the same dev chunks."""
    from dist_spk.segmentation.task import SEG_BASELINES
    from dist_spk.tune.results import against_baselines

    found = against_baselines(exp, SEG_BASELINES)
    if not found:
        return
    for name in SEG_BASELINES:
        beat = sum(best < values[name] for _, best, values in found)
        echo(f"[demo] {beat} of {len(found)} segmentation trials beat {name.split('/')[-1]} on the same dev "
             f"chunks (DER {found[0][2][name]:.3f}; trials {min(b for _, b, _ in found):.3f}"
             f"-{max(b for _, b, _ in found):.3f})")


def _demo_search(task: str, echo: Callable[[str], None], data: Path, exp: Path, *overrides: str) -> None:
    """A local ASHA search of the task's shipped space with the local preset, and its plots."""
    import shutil

    from dist_spk.config import load_config
    from dist_spk.launch.run import OBJECTIVES
    from dist_spk.tune.live_view import short_key, short_value
    from dist_spk.tune.runner import EXPERIMENT_MARK, tune_task
    from dist_spk.tune.space import default_space_path, load_space

    if (exp / "summary.csv").is_file():
        echo(f"{task} search already done in {exp}")
        return
    if exp.is_dir() and any(exp.iterdir()):  # what an interrupted demo left, never a folder the demo did not make
        if not (exp / EXPERIMENT_MARK).is_file():
            raise DistSpkError(f"{exp}: exists, is not empty and is not a search the demo started; move it away or "
                               "choose another --out")
        shutil.rmtree(exp)
    config = load_config(task, overrides=[f"data.root={data.resolve()}", *overrides])
    params = load_space(default_space_path(task), task)
    rows, _ = tune_task(task, config, params, exp_dir=exp, table=False)  # the demo's summary names the best
    objective = OBJECTIVES[task]
    best = rows[0]  # ranked best first
    if best[f"best_{objective}"] is None:
        raise DistSpkError(f"no {task} trial finished an epoch: see {exp / 'logs'}")
    searched = " ".join(f"{short_key(p.key, [q.key for q in params])}={short_value(best.get(p.key))}" for p in params
                        if p.kind != "constant")
    echo(f"best of {len(rows)} {task} trials: {best['trial_id']}, {objective} {best[f'best_{objective}']:.4f} "
         f"at epoch {best['best_epoch'] + 1}: {searched}")
