"""WORLD analysis of a bank's samples, done once and cached on disk by the files' hashes.

Each WAV is read, mixed to mono, resampled to the show's 48 kHz and analysed with WORLD on a
5 ms frame grid: Harvest + StoneMask f0, voiced only where DIO agrees; CheapTrick spectral
envelope; D4C aperiodicity.
The cache stores the coded envelope and aperiodicity (WORLD's own coding, a few dozen numbers
per frame) in ``<cache>/<sha256 of the file and settings>.npz``; an edited WAV gets a new
key, so nothing stale is ever read. From the decoded analysis each frame's minimum-phase
pulse response (periodic part) and filter (aperiodic part) are precomputed in memory, so a
note rendered from this sample only overlap-adds ready responses.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from singer.backends.utau.errors import BankError
from singer.contracts import SAMPLE_RATE_HZ

with warnings.catch_warnings():  # pyworld still imports pkg_resources (setuptools<81)
    warnings.simplefilter("ignore")
    import pyworld

FRAME_MS = 5.0
FRAME_SAMPLES = int(SAMPLE_RATE_HZ * FRAME_MS / 1000)
FFT_SIZE = 2048
CODED_SP_DIMS = 60
F0_FLOOR_HZ = 70.0
F0_CEIL_HZ = 1000.0
UNVOICED_WINDOW_F0_HZ = 150.0
ANALYSIS_VERSION = 4
"""Bumped whenever the analysis changes: old cache files are then simply not found."""
_MEMORY_WAVS = 64


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/livesinger/utau`` (``~/.cache/livesinger/utau``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "livesinger" / "utau"


@dataclass(frozen=True, slots=True)
class SampleFeatures:
    """One WAV ready to resynthesise: per 5 ms frame its f0 (0 = unvoiced), the periodic
    pulse response and the aperiodic (noise) filter."""

    f0_hz: np.ndarray
    """[T] float32."""
    periodic: np.ndarray
    """[T, FFT_SIZE] float32: the minimum-phase response of one glottal pulse."""
    aperiodic: np.ndarray
    """[T, FFT_SIZE/2+1] complex64: the minimum-phase filter of the noise part."""

    @property
    def n_frames(self) -> int:
        """Number of analysis frames."""
        return int(self.f0_hz.shape[0])


def file_key(path: Path) -> str:
    """The cache key of a WAV: its bytes and the analysis settings, hashed."""
    digest = hashlib.sha256()
    digest.update(f"v{ANALYSIS_VERSION} {FRAME_MS} {FFT_SIZE} {CODED_SP_DIMS} "
                  f"{SAMPLE_RATE_HZ}".encode())
    digest.update(path.read_bytes())
    return digest.hexdigest()


class SampleAnalyser:
    """Analyses WAVs on demand: from memory, else from the disk cache, else with WORLD."""

    def __init__(self, cache_dir: Path | str | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._memory: OrderedDict[Path, SampleFeatures] = OrderedDict()
        self._lock = threading.Lock()
        self.analysed = 0
        """WAVs analysed with WORLD by this analyser (the rest came from the cache)."""

    def features(self, wav: Path) -> SampleFeatures:
        """The features of ``wav`` (analysed at most once per content)."""
        with self._lock:
            found = self._memory.get(wav)
            if found is not None:
                self._memory.move_to_end(wav)
                return found
        coded = self._coded(wav)
        features = _expand(*coded)
        with self._lock:
            self._memory[wav] = features
            while len(self._memory) > _MEMORY_WAVS:
                self._memory.popitem(last=False)
        return features

    def _coded(self, wav: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = file_key(wav)
        path = self.cache_dir / f"{key}.npz"
        if path.is_file():
            try:
                with np.load(path) as data:
                    return data["f0"], data["sp"], data["ap"]
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache file is analysed again and replaced
        f0, coded_sp, coded_ap = _analyse(wav)
        self.analysed += 1
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(out, f0=f0, sp=coded_sp, ap=coded_ap)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return f0, coded_sp, coded_ap


def read_wav_48k(wav: Path) -> np.ndarray:
    """A sample file as mono float64 at 48 kHz."""
    try:
        audio, rate = sf.read(str(wav), dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise BankError(wav, None, f"not a readable audio file: {err}") from None
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE_HZ:
        g = np.gcd(int(rate), SAMPLE_RATE_HZ)
        mono = signal.resample_poly(mono, SAMPLE_RATE_HZ // g, int(rate) // g)
    return np.ascontiguousarray(mono)


def _analyse(wav: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = read_wav_48k(wav)
    fs = SAMPLE_RATE_HZ
    f0, t = pyworld.harvest(x, fs, f0_floor=F0_FLOOR_HZ, f0_ceil=F0_CEIL_HZ,
                            frame_period=FRAME_MS)
    f0 = pyworld.stonemask(x, f0, t, fs)
    # Harvest carries voicing into breathy consonants (an aspiration gets an f0): a frame is
    # voiced only where DIO agrees, so consonants stay noise when sung at another pitch.
    dio_f0, _ = pyworld.dio(x, fs, f0_floor=F0_FLOOR_HZ, f0_ceil=F0_CEIL_HZ,
                            frame_period=FRAME_MS)
    f0 = np.where(dio_f0[:len(f0)] > 0, f0, 0.0)
    # Unvoiced frames: a 20 ms window (as for a 150 Hz voice) rather than WORLD's default
    # 6 ms one, whose smearing lifts a consonant's low frequencies to its formants' level.
    sp = pyworld.cheaptrick(x, np.where(f0 > 0, f0, UNVOICED_WINDOW_F0_HZ), t, fs,
                            fft_size=FFT_SIZE)
    ap = pyworld.d4c(x, f0, t, fs, fft_size=FFT_SIZE)
    coded_sp = pyworld.code_spectral_envelope(sp, fs, CODED_SP_DIMS)
    coded_ap = pyworld.code_aperiodicity(ap, fs)
    return f0.astype(np.float32), coded_sp.astype(np.float32), coded_ap.astype(np.float32)


def minimum_phase(magnitude: np.ndarray, fft_size: int = FFT_SIZE) -> np.ndarray:
    """The minimum-phase spectra ``[..., fft/2+1]`` whose magnitudes are ``magnitude``."""
    log_mag = np.log(np.maximum(magnitude, 1e-12))
    cepstrum = np.fft.irfft(log_mag, n=fft_size, axis=-1)
    half = fft_size // 2
    cepstrum[..., 1:half] *= 2.0
    cepstrum[..., half + 1:] = 0.0
    return np.exp(np.fft.rfft(cepstrum, n=fft_size, axis=-1))


def _expand(f0: np.ndarray, coded_sp: np.ndarray, coded_ap: np.ndarray) -> SampleFeatures:
    fs = SAMPLE_RATE_HZ
    sp = pyworld.decode_spectral_envelope(coded_sp.astype(np.float64), fs, FFT_SIZE)
    ap = np.clip(pyworld.decode_aperiodicity(coded_ap.astype(np.float64), fs, FFT_SIZE),
                 0.001, 1.0)
    voiced = (f0 > 0)[:, None]
    ap = np.where(voiced, ap, 1.0)
    periodic_mag = np.sqrt(sp * (1.0 - ap ** 2))
    aperiodic_mag = np.sqrt(sp * ap ** 2)
    periodic = np.fft.irfft(minimum_phase(periodic_mag), n=FFT_SIZE, axis=-1)
    periodic *= voiced
    # no DC: a pulse train of responses with a DC part would drift the waveform
    periodic -= np.hanning(FFT_SIZE)[None, :] * (periodic.sum(axis=1, keepdims=True)
                                                  / np.hanning(FFT_SIZE).sum())
    return SampleFeatures(f0.astype(np.float32), periodic.astype(np.float32),
                          minimum_phase(aperiodic_mag).astype(np.complex64))
