"""How audible the mark is: watermark-to-signal ratio and the margin under a masking threshold.

The threshold is the classic simultaneous-masking offset (Johnston 1988; ISO 11172-3 model 1)
applied to the host's own energy in each band: a noise-like masker hides what is
``5.5 dB`` under it, a tonal one what is ``14.5 + z`` dB under it (z in Bark). Sung vowels are
tonal, so the tonal figure is the conservative one; both are reported. The mark measured is
``marked - original``: with ``watermark.embed`` both layers together (the patchwork and the
additive noise of ``spread.py``).
"""

from __future__ import annotations

import numpy as np

from singer.provenance import watermark as wm


def _bark(f_hz: np.ndarray) -> np.ndarray:
    return 13.0 * np.arctan(0.00076 * f_hz) + 3.5 * np.arctan((f_hz / 7500.0) ** 2)


def imperceptibility(original: np.ndarray, marked: np.ndarray) -> dict[str, float]:
    """``wsr_db`` (mark energy / host energy) and each model's worst band margin (dB, >0 = under).

    Margins are energy-weighted over 512-sample frames per watermark band (the loudest band
    sets the figure); the difference ``marked - original`` is the mark."""
    x = np.asarray(original, dtype=np.float64)
    d = np.asarray(marked, dtype=np.float64)[:len(x)] - x[:len(marked)]
    x = x[:len(d)]
    wsr = 10 * np.log10((np.sum(d * d) + 1e-30) / (np.sum(x * x) + 1e-30))
    frames = len(x) // wm.FFT_SIZE
    win = np.hanning(wm.FFT_SIZE)
    shape = (frames, wm.FFT_SIZE)
    sx = np.abs(np.fft.rfft(x[:frames * wm.FFT_SIZE].reshape(shape) * win, axis=1)) ** 2
    sd = np.abs(np.fft.rfft(d[:frames * wm.FFT_SIZE].reshape(shape) * win, axis=1)) ** 2
    lo, width = wm.FIRST_BIN, wm.BINS_PER_BAND
    hi = lo + wm.BANDS * width
    ex = sx[:, lo:hi].reshape(frames, wm.BANDS, width).sum(axis=2).sum(axis=0)
    ed = sd[:, lo:hi].reshape(frames, wm.BANDS, width).sum(axis=2).sum(axis=0)
    centres = (lo + width * (np.arange(wm.BANDS) + 0.5)) * wm.SAMPLE_RATE_HZ / wm.FFT_SIZE
    ratio_db = 10 * np.log10((ed + 1e-30) / (ex + 1e-30))   # mark under host, per band
    loudest = int(np.argmax(ex))
    return {"wsr_db": round(float(wsr), 2),
            "band_mark_to_host_db_max": round(float(ratio_db.max()), 2),
            "loudest_band_hz": round(float(centres[loudest])),
            "loudest_band_margin_noise_masker_db": round(float(-5.5 - ratio_db[loudest]), 2),
            "loudest_band_margin_tonal_masker_db":
                round(float(-(14.5 + _bark(centres[loudest])) - ratio_db[loudest]), 2)}
