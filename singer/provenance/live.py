"""Marking the live show: one watermark (and the audible cue) applied to every output chunk
once, before it fans out to the recorder, the viewers, the sound card, Janus..."""

from __future__ import annotations

import logging
from collections.abc import Callable

from singer.contracts import AudioChunk
from singer.provenance.aigc import AigcLabel
from singer.provenance.audible import CueMixer
from singer.provenance.watermark import Embedder

log = logging.getLogger(__name__)

ChunkSink = Callable[[AudioChunk], None]


class MarkedFanout:
    """One pacer sink: mixes the audible label (if on), watermarks the chunk with the show's
    ID, then hands the *same* marked chunk to every sink added. Zero latency (causal
    embedder); a gap in show samples (a skipped chunk) seeks the embedder, so the mark stays
    keyed to show time. A sink that raises is logged and removed; the others go on.

    With the audible label on, the cue plays at show start and at every song start
    (``transport``, a ``Director.transport_listeners`` entry): mixed over the song from its
    play point, it never delays the song."""

    def __init__(self, label: AigcLabel, *, audible_label: bool = True,
                 cue_at_sample: int = 0) -> None:
        self.label = label
        self.embedder = Embedder(label.watermark_id)
        self.cue = CueMixer(cue_at_sample) if audible_label else None
        self._sinks: list[ChunkSink] = []
        self._playing = False
        self.chunks = 0

    def transport(self, what: str, at_sample: int, beat: float | None) -> None:
        """A Director transport change: a song that starts playing (``play`` after a stop, a
        load or at show start, or from its top again; not a tempo change or seek while it
        plays) gets the audible cue mixed over its first 1.1 s from ``at_sample`` (its
        lead-in, else its first notes). Other events (``backing``: the backing alone) are
        not the song's transport."""
        if what not in ("play", "stop"):
            return
        starting = what == "play" and (not self._playing or (beat is not None and beat <= 0))
        self._playing = what == "play"
        if starting and self.cue is not None:
            self.cue.add(at_sample)

    def add_sink(self, sink: ChunkSink) -> None:
        """Receive every marked chunk from now on."""
        self._sinks.append(sink)

    def remove_sink(self, sink: ChunkSink) -> None:
        """Stop sending to ``sink`` (no error if it is not there)."""
        if sink in self._sinks:
            self._sinks.remove(sink)

    @property
    def sinks(self) -> tuple[ChunkSink, ...]:
        """The sinks fed, in order."""
        return tuple(self._sinks)

    def __call__(self, chunk: AudioChunk) -> None:
        """Mark ``chunk`` and forward it to every sink."""
        if chunk.t != self.embedder.position:
            self.embedder.seek(chunk.t)
        samples = chunk.samples if self.cue is None else self.cue.mix(chunk.t, chunk.samples)
        marked = AudioChunk(chunk.t, self.embedder.process(samples))
        self.chunks += 1
        for sink in list(self._sinks):
            try:
                sink(marked)
            except Exception:  # a broken sink never stops the show or the other sinks
                log.exception("audio sink %r failed; removing it", sink)
                self.remove_sink(sink)
