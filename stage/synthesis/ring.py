"""The shared-memory chunk ring between the synthesis process and the show's playout.

One ``multiprocessing.shared_memory`` block holds a small header of show-wide numbers (the
show clock's origin, the playout point, how far ahead to render, counters the synthesis
process keeps) and the rendered chunks. Chunks sit in slots keyed by show sample: position
``(start // chunk) % positions``, two banks per position, so the re-render of an edited chunk
never overwrites the audio it superseded while that audio may still have to play (the
late-edit fallback). A slot holds ``planes`` rows of audio: one per singer (the ensemble's
line order; a process pacer makes one per ``--max-singers``), so the program mix downstream
gives each singer their own vocal chain; a ring of one plane holds mono chunks. Each slot is
guarded by a sequence number (a seqlock): the writer makes
it odd, writes, makes it even; a reader that sees it odd or changed across its copy reads
nothing. One process writes slots (the synthesis process), one reads them (playout).
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory

import numpy as np

HEADER_FIELDS = ("origin_ns", "playout_sample", "played_generation", "lookahead_chunks",
                 "stopping", "stale_chunks", "render_errors", "realtime", "next_render",
                 "heartbeat_ns", "generation", "voice_fallbacks", "live_latency_samples",
                 "live_reports", "late_woke_late", "late_gc", "late_slow_work", "late_off_cpu")
"""The header's int64 fields, in order (``ChunkRing.get``/``set`` by name)."""
_H = {name: i for i, name in enumerate(HEADER_FIELDS)}
REPORT_SLOTS = 16
"""Held live notes' reports kept in the header (``push_report``): the reader looks every
chunk; more than this between two looks loses the oldest (counted)."""
_REPORT_FIELDS = 3  # held note id, kind (0: on, 1: off), show sample (-1: not known yet)
_REPORTS_AT = 24
_HEADER_SLOTS = _REPORTS_AT + REPORT_SLOTS * _REPORT_FIELDS
assert len(HEADER_FIELDS) <= _REPORTS_AT, "the header's fields run into its report queue"
_META = 4  # per slot: sequence, start sample, generation, monotonic ns rendered
_SEQ, _START, _GEN, _DONE_NS = range(_META)
BANKS = 2


@dataclass(frozen=True, slots=True)
class RingChunk:
    """A chunk read out of the ring (a copy: the slot may be written again at once)."""

    start_sample: int
    generation: int
    rendered_ns: int
    samples: np.ndarray


class ChunkRing:
    """Numpy views on the shared block; ``create`` in the show, ``attach`` in the synthesis
    process (by ``name``)."""

    def __init__(self, shm: shared_memory.SharedMemory, positions: int, chunk_samples: int,
                 owner: bool, planes: int = 1) -> None:
        self.positions = positions
        self.chunk_samples = chunk_samples
        self.planes = planes
        self._shm = shm
        self._owner = owner
        buf = shm.buf
        n_meta = positions * BANKS * _META
        self.header: np.ndarray = np.ndarray((_HEADER_SLOTS,), np.int64, buf, 0)
        self._meta: np.ndarray = np.ndarray((positions, BANKS, _META), np.int64, buf,
                                            8 * _HEADER_SLOTS)
        self._audio: np.ndarray = np.ndarray((positions, BANKS, planes, chunk_samples),
                                             np.float32, buf, 8 * (_HEADER_SLOTS + n_meta))

    @staticmethod
    def size_bytes(positions: int, chunk_samples: int, planes: int = 1) -> int:
        """Bytes of shared memory a ring of this shape takes."""
        return 8 * (_HEADER_SLOTS + positions * BANKS * _META) \
            + 4 * positions * BANKS * planes * chunk_samples

    @classmethod
    def create(cls, positions: int, chunk_samples: int, planes: int = 1) -> ChunkRing:
        """A new, empty ring (every slot empty: start sample -1)."""
        shm = shared_memory.SharedMemory(create=True,
                                         size=cls.size_bytes(positions, chunk_samples, planes))
        ring = cls(shm, positions, chunk_samples, owner=True, planes=planes)
        ring.header[:] = 0
        ring._meta[:] = 0
        ring._meta[:, :, _START] = -1
        return ring

    @classmethod
    def attach(cls, name: str, positions: int, chunk_samples: int, planes: int = 1
               ) -> ChunkRing:
        """The ring ``name`` made by ``create`` in another process."""
        # Python 3.11 registers an attached block with the resource tracker, which would
        # remove it when this process ends: the show owns it, so attach untracked.
        register = resource_tracker.register
        resource_tracker.register = lambda *_args: None  # type: ignore[assignment]
        try:
            shm = shared_memory.SharedMemory(name=name, create=False)
        finally:
            resource_tracker.register = register  # type: ignore[assignment]
        return cls(shm, positions, chunk_samples, owner=False, planes=planes)

    @property
    def name(self) -> str:
        """The shared block's name (what ``attach`` takes)."""
        return self._shm.name

    def get(self, field: str) -> int:
        """A header field (see ``HEADER_FIELDS``)."""
        return int(self.header[_H[field]])

    def set(self, field: str, value: int) -> None:
        """Set a header field (each field has one writer: see ``docs/synthesis.md``)."""
        self.header[_H[field]] = value

    def add(self, field: str, delta: int) -> None:
        """Add to a counter in the header (its one writer only)."""
        self.header[_H[field]] += delta

    def push_report(self, held_id: int, kind: int, sample: int) -> None:
        """Append a held note's report (its one writer: the synthesis process, under its
        own lock): the entry first, then the count the reader goes by."""
        count = self.get("live_reports")
        at = _REPORTS_AT + (count % REPORT_SLOTS) * _REPORT_FIELDS
        self.header[at:at + _REPORT_FIELDS] = (held_id, kind, sample)
        self.header[_H["live_reports"]] = count + 1

    def reports_since(self, seen: int) -> tuple[int, list[tuple[int, int, int]], int]:
        """The reports pushed after the first ``seen``: (the count now, the reports kept
        of them in order, how many were lost: overwritten before they were read)."""
        count = self.get("live_reports")
        first = max(seen, count - REPORT_SLOTS)
        out = []
        for k in range(first, count):
            at = _REPORTS_AT + (k % REPORT_SLOTS) * _REPORT_FIELDS
            held_id, kind, sample = (int(v) for v in self.header[at:at + _REPORT_FIELDS])
            out.append((held_id, kind, sample))
        return count, out, first - seen

    def write(self, start_sample: int, generation: int, samples: np.ndarray,
              rendered_ns: int, keep_generation: int) -> None:
        """Put a rendered chunk (mono ``[n]`` or per singer ``[rows, n]``; rows past the
        last plane are summed into it) in its position's slot, sparing the bank that holds
        this chunk as ``keep_generation`` rendered it (the audio playing continues from it)."""
        pos = (start_sample // self.chunk_samples) % self.positions
        meta = self._meta[pos]
        bank = 0
        best: tuple[int, int] | None = None
        for b in range(BANKS):
            same = int(meta[b, _START]) == start_sample
            if same and int(meta[b, _GEN]) == keep_generation and generation != keep_generation:
                continue
            rank = (1 if same else 0, int(meta[b, _GEN]) if same else 0)
            if best is None or rank < best:
                best, bank = rank, b
        slot = meta[bank]
        slot[_SEQ] += 1  # odd: being written
        slot[_START] = start_sample
        slot[_GEN] = generation
        slot[_DONE_NS] = rendered_ns
        audio = self._audio[pos, bank]
        rows = samples.reshape(-1, samples.shape[-1])
        k = min(len(rows), self.planes)
        audio[:k] = rows[:k]
        audio[k:] = 0.0
        if len(rows) > self.planes:  # more singers than planes: the last one holds the rest
            audio[-1] += rows[k:].sum(axis=0, dtype=np.float32)
        slot[_SEQ] += 1  # even: complete

    def read(self, start_sample: int) -> list[RingChunk]:
        """The complete chunks held for ``start_sample`` (0, 1 or 2, any generation); each
        ``[planes, n]``, or ``[n]`` in a ring of one plane."""
        pos = (start_sample // self.chunk_samples) % self.positions
        meta = self._meta[pos]
        found = []
        for b in range(BANKS):
            seq = int(meta[b, _SEQ])
            if seq % 2 or int(meta[b, _START]) != start_sample:
                continue
            generation, done_ns = int(meta[b, _GEN]), int(meta[b, _DONE_NS])
            samples = self._audio[pos, b].copy()
            if self.planes == 1:
                samples = samples[0]
            if int(meta[b, _SEQ]) != seq or int(meta[b, _START]) != start_sample:
                continue  # written meanwhile: torn
            found.append(RingChunk(start_sample, generation, done_ns, samples))
        return found

    def close(self) -> None:
        """Let go of the shared block (and remove it, in the process that created it)."""
        self.header = self._meta = self._audio = None  # type: ignore[assignment]
        self._shm.close()
        if self._owner:
            self._shm.unlink()
