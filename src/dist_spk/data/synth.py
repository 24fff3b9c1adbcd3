"""``dist-spk data synth``: a synthetic, deterministic demo corpus spoken by espeak-ng voices.

Speakers are espeak-ng voices: accent x voice variant x pitch x speed, so a few hundred distinct
speakers are available. Output, all 16 kHz mono 16-bit WAV::

    OUT/diar/    seed layout: conversations of 2-4 speakers with pauses and overlaps;
                 RTTM turns are the exact sample spans of the (trimmed) utterances; UEM = whole file
    OUT/spk/     VoxCeleb layout {speaker}/{session}/{utt}.wav, and trials.txt on held-out speakers
                 (the VoxCeleb1 convention: training uses every speaker absent from the trial list)
    OUT/noise/   background noises (white, pink, brown, hum, babble) for augmentation
    OUT/corpus.json  seed, size, voices and counts

Diarization dev and test conversations use only held-out speakers (disjoint halves of them), so the
full pipeline is tuned and evaluated on voices the speaker encoder never saw. Times are on a 1 ms
grid so RTTM/UEM text (3 decimals) is exact.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import lfilter, resample_poly
from tqdm.auto import tqdm

from dist_spk.data.layout import SPLITS
from dist_spk.data.rttm import Region, Turn, format_rttm, format_uem
from dist_spk.data.trials import Trial, balanced_trials, format_trials
from dist_spk.errors import DataError

SAMPLE_RATE = 16000
ESPEAK_RATE = 22050  # espeak-ng writes 22,050 Hz; 16000/22050 = 320/441
GRID = SAMPLE_RATE // 1000  # 1 ms in samples

ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "Alex", "Andrea", "Annie",
            "belinda", "david", "edward", "linda", "max", "robert", "steph", "zac", "shelby", "victor", "quincy",
            "travis", "norbert", "aunty", "grandma", "grandpa", "benjamin", "croak", "klatt", "klatt2", "klatt3")
PITCHES = (20, 35, 50, 65, 80)
SPEEDS = (135, 155, 175)


@dataclass(frozen=True)
class CorpusStyle:
    """Which voices speak and how noisy the recordings are."""

    accents: tuple[str, ...]
    pitches: tuple[int, ...]
    speeds: tuple[int, ...]
    conversation_snr_db: tuple[float, float]
    session_snr_db: tuple[float, float]  # speaker recordings: one SNR per (speaker, session)


STYLES: dict[str, CorpusStyle] = {
    "demo": CorpusStyle(ACCENTS, PITCHES, SPEEDS, (15.0, 35.0), (12.0, 35.0)),
    # For evaluation only, never for training: no voice of a demo corpus speaks here. Pitches and speeds are off
    # the demo grid, so every voice is new; half the accents are other languages' voices reading English, the
    # rest are demo accents, whose voices sit close to a demo voice of the same variant (similar-sounding on
    # purpose); SNRs of 5-20 dB instead of 12-35.
    "heldout": CorpusStyle(("de", "nl", "sv", "da", "en-us", "en-gb", "en-gb-scotland", "en-029"),
                           (28, 43, 58, 72), (145, 165), (5.0, 20.0), (5.0, 20.0)),
}


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak-ng voice with a pitch and a speed."""

    speaker: str
    accent: str
    variant: str
    pitch: int
    speed: int


@dataclass(frozen=True)
class CorpusSize:
    """How much of everything a corpus size generates."""

    conversations: dict[str, int]  # per diarization split
    conversation_seconds: tuple[float, float]
    train_speakers: int  # speaker-encoder training speakers (also in diar train/dev)
    heldout_speakers: int  # trial-list speakers (also in diar test)
    utterances_per_speaker: int
    sessions: int = 2
    noise_seconds: float = 10.0


SIZES: dict[str, CorpusSize] = {
    "tiny": CorpusSize({"train": 3, "dev": 1, "test": 1}, (12.0, 16.0), 6, 4, 3, noise_seconds=4.0),
    # the test suite's: the earlier small corpus (its held-out voices speak with variants no training voice has,
    # so it is no measure of generalisation; the suite checks behaviour, and this keeps it fast)
    "compact": CorpusSize({"train": 12, "dev": 3, "test": 3}, (25.0, 40.0), 24, 10, 8),
    "small": CorpusSize({"train": 20, "dev": 5, "test": 5}, (25.0, 40.0), 48, 10, 6),
    "medium": CorpusSize({"train": 48, "dev": 10, "test": 10}, (40.0, 80.0), 80, 24, 12),
}


@dataclass
class CorpusSummary:
    """What ``synthesize`` wrote (also saved as ``corpus.json``)."""

    seed: int
    size: str
    voices: list[Voice]
    conversations: dict[str, int]
    diar_hours: float
    spk_utterances: int
    trials: int
    espeak_version: str = ""
    style: str = "demo"
    files: list[str] = field(default_factory=list)


def espeak_version() -> str:
    """The espeak-ng version line, or a :class:`DataError` telling how to install it."""
    if shutil.which("espeak-ng") is None:
        raise DataError("espeak-ng is not installed; the demo corpus needs it (apt-get install espeak-ng, "
                        "or run 'make setup')")
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[0]


def sentences() -> list[str]:
    """The built-in sentences the voices read."""
    text = resources.files("dist_spk.data").joinpath("sentences.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def make_voices(count: int, rng: np.random.Generator, style: CorpusStyle = STYLES["demo"]) -> list[Voice]:
    """``count`` distinct voices of ``style``; variants cycle so neighbouring speakers differ in timbre."""
    combos = list(itertools.product(style.accents, style.pitches, style.speeds))
    order = rng.permutation(len(combos))
    voices = []
    for i in range(count):
        accent, pitch, speed = combos[order[i % len(order)]]
        voices.append(Voice(f"id{i + 1:05d}", accent, VARIANTS[i % len(VARIANTS)], pitch, speed))
    return voices


def speak(voice: Voice, text: str) -> np.ndarray:
    """Synthesise ``text`` with ``voice``: 16 kHz float32, leading/trailing silence trimmed to the 1 ms grid."""
    command = ["espeak-ng", "-v", f"{voice.accent}+{voice.variant}", "-p", str(voice.pitch), "-s", str(voice.speed),
               "--stdout", text]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise DataError(f"espeak-ng failed for voice {voice.accent}+{voice.variant}: {result.stderr.decode()[:200]}")
    audio, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float32")
    if rate != ESPEAK_RATE:
        raise DataError(f"espeak-ng wrote {rate} Hz audio, expected {ESPEAK_RATE} Hz")
    audio = resample_poly(audio, 320, 441).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())
    start, end = loud[0] // GRID * GRID, -(-(loud[-1] + 1) // GRID) * GRID
    return audio[start:end] / (np.abs(audio).max() + 1e-9)


def colored_noise(samples: int, rng: np.random.Generator, *, color: str) -> np.ndarray:
    """White, pink (1/f, Voss-McCartney-like filter) or brown (integrated) noise at unit RMS."""
    white = rng.standard_normal(samples)
    if color == "pink":  # Paul Kellet's economy pink filter
        noise = lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786], [1, -2.494956002, 2.017265875,
                        -0.522189400], white)
    elif color == "brown":
        noise = lfilter([1.0], [1.0, -0.995], white)
    else:
        noise = white
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def _db(value: float) -> float:
    return float(10 ** (value / 20))


def _add_noise(audio: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    speech_rms = np.sqrt(np.mean(audio[np.abs(audio) > 1e-4] ** 2)) if np.any(np.abs(audio) > 1e-4) else 0.1
    noise = colored_noise(len(audio), rng, color=str(rng.choice(["white", "pink", "brown"])))
    return audio + noise * speech_rms / _db(snr_db)


def _write_wav(path: Path, audio: np.ndarray) -> None:
    peak = np.abs(audio).max()
    if peak > 0.95:  # keep clear of clipping; the relative levels are what matter
        audio = audio * (0.95 / peak)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, SAMPLE_RATE, subtype="PCM_16")


class _Speaker:
    """Caches a voice's utterances: each (voice, text) is synthesised once."""

    def __init__(self, voice: Voice):
        self.voice = voice
        self._cache: dict[str, np.ndarray] = {}

    def say(self, text: str) -> np.ndarray:
        if text not in self._cache:
            self._cache[text] = speak(self.voice, text)
        return self._cache[text]


def _prefetch(speakers: list[_Speaker], plan: list[tuple[int, str]], desc: str) -> None:
    """Run espeak-ng for every planned (speaker, text) in parallel: it is a subprocess per utterance."""
    unique = sorted(set(plan))
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(tqdm(pool.map(lambda item: speakers[item[0]].say(item[1]), unique), total=len(unique), desc=desc,
                  unit="utt", leave=False, disable=None))


def _conversation_plan(rng: np.random.Generator, members: list[int], texts: list[str], seconds: float
                       ) -> list[tuple[int, str]]:
    """Who says what, in order; everyone speaks at least once. About 2.5 s of speech per turn."""
    turns = max(len(members) + 1, int(seconds / 2.5))
    order = list(rng.permutation(members))
    while len(order) < turns:
        candidates = [m for m in members if m != order[-1]]
        order.append(int(rng.choice(candidates)))
    return [(int(m), str(rng.choice(texts))) for m in order]


def render_conversation(uri: str, plan: list[tuple[int, str]], speakers: list[_Speaker], rng: np.random.Generator,
                        *, noise: bool, snr_db: tuple[float, float] = STYLES["demo"].conversation_snr_db
                        ) -> tuple[np.ndarray, list[Turn]]:
    """Mix a conversation: pauses (75%) or overlaps (25%) between turns, per-speaker levels, noise.

    Returns the audio and its turns, whose spans are exactly the utterances' sample spans.
    """
    gains = {m: _db(rng.uniform(-6, 3)) for m, _ in plan}
    placed: list[tuple[int, int, np.ndarray]] = []  # (member, start sample, audio)
    cursor = int(rng.uniform(0.3, 1.0) * 1000) * GRID
    last_end: dict[int, int] = {}
    for member, text in plan:
        audio = speakers[member].say(text) * gains[member] * _db(rng.uniform(-2, 2))
        if placed and rng.random() < 0.25:  # overlap the end of the previous turn
            previous_start = placed[-1][1]
            start = max(previous_start + 200 * GRID, cursor - int(rng.uniform(0.3, 1.5) * 1000) * GRID)
        else:
            start = cursor + int(rng.uniform(0.1, 1.2) * 1000) * GRID
        start = max(start, last_end.get(member, 0) + 50 * GRID)  # a speaker never overlaps itself
        placed.append((member, start, audio))
        last_end[member] = start + len(audio)
        cursor = max(cursor, start + len(audio))
    total = cursor + int(rng.uniform(0.3, 1.0) * 1000) * GRID
    mix = np.zeros(total, dtype=np.float32)
    for _, start, audio in placed:
        mix[start:start + len(audio)] += audio
    if noise:
        mix = _add_noise(mix, rng, rng.uniform(*snr_db))
    turns = [Turn(uri, start / SAMPLE_RATE, len(audio) / SAMPLE_RATE, speakers[m].voice.speaker)
             for m, start, audio in placed]
    return mix, turns


def _write_diarization(out: Path, size: CorpusSize, speakers: list[_Speaker], train_ids: list[int],
                       heldout_ids: list[int], texts: list[str], rng: np.random.Generator, *, noise: bool,
                       style: CorpusStyle) -> float:
    """The seed-layout half of the corpus; returns its duration in hours."""
    plans: dict[str, list[tuple[int, str]]] = {}
    # dev and test speak with held-out voices (the speaker encoder never trains on them), each half of them: the
    # pipeline is tuned on dev, so dev must be unseen like test or its clustering threshold would not carry over
    half = len(heldout_ids) // 2
    pools = {"train": train_ids, "dev": heldout_ids[:half], "test": heldout_ids[half:]}
    for split in SPLITS:
        pool = pools[split]
        for index in range(size.conversations[split]):
            count = min(int(rng.integers(2, 5)), len(pool))
            members = [int(m) for m in rng.choice(pool, size=count, replace=False)]
            plans[f"{split}_{index + 1:03d}"] = _conversation_plan(rng, members, texts,
                                                                   rng.uniform(*size.conversation_seconds))
    _prefetch(speakers, [item for plan in plans.values() for item in plan], "synthesising conversations")
    seconds = 0.0
    for split in SPLITS:
        uris = sorted(uri for uri in plans if uri.startswith(f"{split}_"))
        for uri in uris:
            audio, turns = render_conversation(uri, plans[uri], speakers, rng, noise=noise,
                                               snr_db=style.conversation_snr_db)
            _write_wav(out / split / "wav" / f"{uri}.wav", audio)
            (out / split / "rttm").mkdir(parents=True, exist_ok=True)
            (out / split / "rttm" / f"{uri}.rttm").write_text(format_rttm(turns))
            (out / split / "uem").mkdir(parents=True, exist_ok=True)
            (out / split / "uem" / f"{uri}.uem").write_text(format_uem([Region(uri, 0.0, len(audio) / SAMPLE_RATE)]))
            seconds += len(audio) / SAMPLE_RATE
        (out / f"{split}.txt").write_text("".join(f"{uri}\n" for uri in uris))
    return seconds / 3600


def _write_speakers(out: Path, size: CorpusSize, speakers: list[_Speaker], train_ids: list[int],
                    heldout_ids: list[int], texts: list[str], rng: np.random.Generator, *, noise: bool,
                    style: CorpusStyle) -> tuple[int, list[Trial]]:
    """The VoxCeleb-layout half; returns the utterance count and the trials written."""
    plan = {
        (member, session, utt): " ".join(rng.choice(texts, size=int(rng.integers(1, 3)), replace=False))
        for member in train_ids + heldout_ids
        for session in range(size.sessions)
        for utt in range(size.utterances_per_speaker // size.sessions)
    }
    _prefetch(speakers, [(m, text) for (m, _, _), text in plan.items()], "synthesising utterances")
    # every session its own level and noise floor, as recordings from different days would have
    sessions = {(m, s): (rng.uniform(-8, 0), rng.uniform(*style.session_snr_db)) for m, s, _ in plan}
    heldout_utterances: dict[str, list[str]] = {}
    for (member, session, utt), text in plan.items():
        gain_db, snr_db = sessions[member, session]
        audio = speakers[member].say(text) * _db(gain_db)
        pad = np.zeros(int(rng.uniform(0.1, 0.4) * SAMPLE_RATE), dtype=np.float32)
        audio = np.concatenate([pad, audio, pad])
        if noise:
            audio = _add_noise(audio, rng, snr_db)
        speaker = speakers[member].voice.speaker
        relative = f"{speaker}/s{session + 1:02d}/{utt + 1:05d}.wav"
        _write_wav(out / relative, audio)
        if member in heldout_ids:
            heldout_utterances.setdefault(speaker, []).append(relative)
    trials = balanced_trials(heldout_utterances, rng=rng)
    (out / "trials.txt").write_text(format_trials(trials))
    return len(plan), trials


def _write_noises(out: Path, size: CorpusSize, speakers: list[_Speaker], texts: list[str],
                  rng: np.random.Generator) -> None:
    samples = int(size.noise_seconds * SAMPLE_RATE)
    t = np.arange(samples) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3, 5)).astype(np.float32)
    babble = np.zeros(samples, dtype=np.float32)
    for member in rng.choice(len(speakers), size=min(4, len(speakers)), replace=False):
        clip = np.tile(speakers[int(member)].say(str(rng.choice(texts))), 1 + samples // 8000)[:samples]
        babble[: len(clip)] += clip
    for name, audio in {"white": colored_noise(samples, rng, color="white"),
                        "pink": colored_noise(samples, rng, color="pink"),
                        "brown": colored_noise(samples, rng, color="brown"),
                        "hum": hum, "babble": babble}.items():
        _write_wav(out / f"{name}.wav", 0.3 * audio / (np.abs(audio).max() + 1e-9))


def synthesize(out: str | Path, *, seed: int = 0, size: str = "small", noise: bool = True, style: str = "demo"
               ) -> CorpusSummary:
    """Generate the demo corpus into ``out`` (which must not already hold one).

    Parameters
    ----------
    out
        Output folder; ``diar/``, ``spk/``, ``noise/`` and ``corpus.json`` are written inside.
    seed
        Same seed, same corpus, byte for byte (for one espeak-ng version).
    size
        ``tiny`` (tests), ``compact`` (the test suite's corpus), ``small`` (demo, seconds) or ``medium``.
    noise
        Mix background noise into every recording.
    style
        ``demo`` (the voices training uses) or ``heldout`` (voices no demo corpus holds, noisier: for
        evaluating models trained on a demo corpus on voices they never heard).
    """
    if size not in SIZES:
        raise DataError(f"unknown corpus size '{size}'; valid sizes: {', '.join(SIZES)}")
    if style not in STYLES:
        raise DataError(f"unknown corpus style '{style}'; valid styles: {', '.join(STYLES)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} exists and is not an empty folder; choose another folder or delete it")
    version = espeak_version()
    spec = SIZES[size]
    rng = np.random.default_rng(seed)
    texts = sentences()
    voices = make_voices(spec.train_speakers + spec.heldout_speakers, rng, STYLES[style])
    speakers = [_Speaker(v) for v in voices]
    train_ids = list(range(spec.train_speakers))
    heldout_ids = list(range(spec.train_speakers, len(voices)))
    staging = out.with_name(out.name + ".partial")  # written here, renamed when complete
    if staging.exists():
        shutil.rmtree(staging)
    hours = _write_diarization(staging / "diar", spec, speakers, train_ids, heldout_ids, texts, rng, noise=noise,
                               style=STYLES[style])
    utterances, trials = _write_speakers(staging / "spk", spec, speakers, train_ids, heldout_ids, texts, rng,
                                         noise=noise, style=STYLES[style])
    _write_noises(staging / "noise", spec, speakers, texts, rng)
    summary = CorpusSummary(seed, size, voices, dict(spec.conversations), round(hours, 4), utterances, len(trials),
                            version, style)
    summary.files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for name in summary.files:
        digest.update((staging / name).read_bytes())
    record = asdict(summary) | {"sha256": digest.hexdigest()}
    (staging / "corpus.json").write_text(json.dumps(record, indent=1))
    if out.exists():
        out.rmdir()  # checked empty above
    staging.rename(out)
    return summary
