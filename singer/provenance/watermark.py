"""An inaudible, streaming audio watermark for the singer's output (48 kHz, pure numpy DSP).

Scheme: *band-energy patchwork*, a spread-spectrum code in the log-energy of 16 bands of
562 Hz between 375 Hz and 9.4 kHz. Time is cut into slots of 2,048 samples (42.7 ms, two
Opus frames); in every slot each band's amplitude is scaled by ``1 ± strength`` following a
pseudo-random chip. A third of the (slot, band) cells of a 56-slot period (2.39 s) carry a fixed
sync pattern, the rest the payload: 32 bits of ID + a 16-bit counter of 19.1 s epochs
(time) + CRC-8, convolutionally coded (rate 1/3, K = 7), each coded bit spread over ~3.2
cells per period; the message repeats for the 8 periods of an epoch, so a clip's periods are
combined before decoding.

Why this scheme: the change in each band is a fixed fraction of the signal already there, so
the mark is shaped under the signal's own spectrum and masked by it (silence stays silent);
it ignores phase, so it survives resampling, MP3 and Opus — CELT codes exactly these band
energies per 20 ms frame; a level change cancels in log-energy differences; and a mix under
another signal only dilutes it. Detection correlates the de-trended log-energies of a clip
with the sync pattern at every offset (64-sample steps, every slot of the period), so any
5 s clip is found without knowing where it was cut, then decodes the payload from it.

Embedding is STFT (512-point, hop 256, sqrt-Hann, weighted overlap-add): one FFT pair per
256 samples, a fixed latency of ``LATENCY_SAMPLES`` (511 samples, 10.6 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from singer.provenance import wmcode

SAMPLE_RATE_HZ = 48_000
FFT_SIZE = 512
HOP = 256
LATENCY_SAMPLES = FFT_SIZE - 1
FRAMES_PER_SLOT = 8
SLOT_SAMPLES = HOP * FRAMES_PER_SLOT
SLOTS_PER_PERIOD = 56
PERIOD_SAMPLES = SLOT_SAMPLES * SLOTS_PER_PERIOD
FIRST_BIN = 4
BINS_PER_BAND = 6
BANDS = 16
EPOCH_PERIODS = 8
ID_BITS = 32
COUNTER_BITS = 16
MESSAGE_BITS = ID_BITS + COUNTER_BITS + 8
STRENGTH = 0.1
"""Default amplitude change per band (±0.8 dB): each band's mark sits 20 dB under itself."""
THRESHOLD = 6.0
"""Sync score (a z-score, ~N(0, 1) per candidate on unmarked audio) needed to say 'found'."""
KEY = 0x5EED_A1C0


@dataclass(frozen=True, slots=True)
class Payload:
    """What the mark carries: an ID (a show or render) and the period counter (time)."""

    id: int
    """32-bit ID, e.g. the first 8 hex digits of the AIGC ``ProduceID``."""
    counter: int = 0
    """Epochs since the embedder started, modulo 2**16 (times ``EPOCH_S``: time in s)."""

    def __post_init__(self) -> None:
        if not 0 <= self.id < 1 << ID_BITS:
            raise ValueError(f"watermark id must be a 32-bit unsigned integer, not {self.id}")
        if not 0 <= self.counter < 1 << COUNTER_BITS:
            raise ValueError(f"watermark counter must fit 16 bits, not {self.counter}")

    @property
    def time_s(self) -> float:
        """Start of this epoch in the marked stream, in seconds (modulo 2**16 epochs)."""
        return self.counter * EPOCH_S

    def to_json(self) -> dict[str, object]:
        """The payload as JSON: id in hex, counter, time."""
        return {"id": f"{self.id:08x}", "counter": self.counter, "time_s": round(self.time_s, 3)}


PERIOD_S = PERIOD_SAMPLES / SAMPLE_RATE_HZ
EPOCH_S = PERIOD_S * EPOCH_PERIODS


def _layout() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The keyed (period slot, band) layout: sync mask, sync chips, data bit index, data chips."""
    rng = np.random.default_rng(KEY)
    cells = SLOTS_PER_PERIOD * BANDS
    is_sync = np.zeros(cells, dtype=bool)
    is_sync[rng.permutation(cells)[:cells // 3]] = True
    sync_chip = rng.choice([-1.0, 1.0], size=cells)
    coded = 3 * (MESSAGE_BITS + wmcode.TAIL_BITS)
    bit_index = np.full(cells, -1)
    data_cells = np.flatnonzero(~is_sync)
    bit_index[data_cells[rng.permutation(len(data_cells))]] = np.arange(len(data_cells)) % coded
    data_chip = rng.choice([-1.0, 1.0], size=cells)
    shape = (SLOTS_PER_PERIOD, BANDS)
    return (is_sync.reshape(shape), np.where(is_sync, sync_chip, 0.0).reshape(shape),
            bit_index.reshape(shape), np.where(is_sync, 0.0, data_chip).reshape(shape))


IS_SYNC, SYNC_CHIPS, BIT_INDEX, DATA_CHIPS = _layout()


def message_bits(payload: Payload) -> np.ndarray:
    """ID, counter (MSB first) and their CRC-8: 56 bits."""
    value = payload.id << COUNTER_BITS | payload.counter
    bits = np.array([(value >> (ID_BITS + COUNTER_BITS - 1 - i)) & 1
                     for i in range(ID_BITS + COUNTER_BITS)], dtype=np.int8)
    return np.concatenate([bits, wmcode.crc8(bits)])


def period_chips(payload: Payload) -> np.ndarray:
    """±1 chip of every (slot, band) cell of one period carrying ``payload``: (56, 26)."""
    coded = wmcode.encode(message_bits(payload))
    data = DATA_CHIPS * (1.0 - 2.0 * coded[np.maximum(BIT_INDEX, 0)])
    return np.where(IS_SYNC, SYNC_CHIPS, data)


class Embedder:
    """Streaming watermark embedder: ``process(chunk) -> chunk`` of the same length.

    The output is the input delayed by ``LATENCY_SAMPLES`` with the mark in it; ``flush()``
    returns the last ``LATENCY_SAMPLES``. Any chunking gives the same samples as one call.
    """

    latency_samples = LATENCY_SAMPLES

    def __init__(self, id: int, *, counter_start: int = 0, strength: float = STRENGTH) -> None:
        Payload(id, counter_start)  # validates
        if not 0.0 < strength < 0.5:
            raise ValueError(f"watermark strength must be in (0, 0.5), not {strength}")
        self.id = id
        self.counter_start = counter_start
        self.strength = strength
        self._window = np.sqrt(np.hanning(FFT_SIZE + 1)[:-1])  # periodic: WOLA sums to 1
        self.reset()

    def reset(self) -> None:
        """Start a new stream (slot 0, epoch counter ``counter_start``)."""
        self._frame_in = np.zeros(FFT_SIZE)
        self._fill = FFT_SIZE - HOP          # the first frame starts HOP samples early
        self._ola = np.zeros(FFT_SIZE)
        self._pending = np.zeros(LATENCY_SAMPLES)
        self._frames = 0
        self._slot = -1
        self._gains = np.ones(FFT_SIZE // 2 + 1)
        self._chips: np.ndarray | None = None
        self._epoch = -1

    def _gains_for(self, slot: int) -> np.ndarray:
        if slot != self._slot:
            epoch = slot // (SLOTS_PER_PERIOD * EPOCH_PERIODS)
            if epoch != self._epoch or self._chips is None:
                counter = (self.counter_start + epoch) % (1 << COUNTER_BITS)
                self._chips = period_chips(Payload(self.id, counter))
                self._epoch = epoch
            chips = self._chips[slot % SLOTS_PER_PERIOD]
            band = np.repeat(1.0 + self.strength * chips, BINS_PER_BAND)
            self._gains[FIRST_BIN:FIRST_BIN + len(band)] = band
            self._slot = slot
        return self._gains

    def _frame(self) -> np.ndarray:
        spectrum = np.fft.rfft(self._frame_in * self._window)
        spectrum *= self._gains_for(self._frames // FRAMES_PER_SLOT)
        self._ola += np.fft.irfft(spectrum, FFT_SIZE) * self._window
        ready = self._ola[:HOP].copy()
        self._ola[:-HOP] = self._ola[HOP:]
        self._ola[-HOP:] = 0.0
        self._frame_in[:-HOP] = self._frame_in[HOP:]
        self._fill = FFT_SIZE - HOP
        self._frames += 1
        return ready

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Mark one chunk (mono float); returns as many samples, ``LATENCY_SAMPLES`` late."""
        x = np.asarray(chunk, dtype=np.float64).reshape(-1)
        pieces = [self._pending]
        pos = 0
        while pos < len(x):
            take = min(FFT_SIZE - self._fill, len(x) - pos)
            self._frame_in[self._fill:self._fill + take] = x[pos:pos + take]
            self._fill += take
            pos += take
            if self._fill == FFT_SIZE:
                ready = self._frame()
                if self._frames > 1:  # the first frame's output lies before sample 0
                    pieces.append(ready)
        out = np.concatenate(pieces)
        self._pending = out[len(x):]
        return out[:len(x)].astype(np.float32)

    def flush(self) -> np.ndarray:
        """The last ``LATENCY_SAMPLES`` of output (the stream is then complete)."""
        return self.process(np.zeros(LATENCY_SAMPLES))


def embed(audio: np.ndarray, id: int, *, counter_start: int = 0,
          strength: float = STRENGTH) -> np.ndarray:
    """Offline marking: float32 of the same length, sample for sample aligned with ``audio``."""
    embedder = Embedder(id, counter_start=counter_start, strength=strength)
    out = np.concatenate([embedder.process(audio), embedder.flush()])
    return out[LATENCY_SAMPLES:LATENCY_SAMPLES + len(audio)]


if TYPE_CHECKING:
    from singer.provenance.detector import Detection


def detect(audio: np.ndarray, sample_rate: int, *, threshold: float = THRESHOLD) -> Detection:
    """Look for the mark in ``audio`` (any rate, any length): see ``detector.detect``."""
    from singer.provenance.detector import detect as _detect

    return _detect(audio, sample_rate, threshold=threshold)
