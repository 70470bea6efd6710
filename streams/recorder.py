"""Recorder sinks: what was streamed, to ``DIR/audio.wav`` (from show sample 0) and
``DIR/pose.jsonl`` (the pose frames with the show samples the viewers got).

Both carry the show's AIGC implicit label (GB 45438-2025) when given one: the WAV as its RIFF
``AIGC`` chunk (written at ``close``), the pose track as a first-line header record
``{"AIGC": {...}}`` before the frames (``read_pose_track`` reads both parts back)."""

from __future__ import annotations

import json
import logging
import queue
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

from rigs.pose import PoseFrame
from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from singer.provenance.aigc import AigcLabel, LabelError, write_wav_label

log = logging.getLogger(__name__)


class AudioRecorder:
    """A pacer sink that writes chunks to a 48 kHz float WAV from a writer thread.

    Chunks land at their show-sample position (a gap is written as silence), so WAV time is
    show time. ``close()`` flushes and finalises the file, then writes ``label`` (if any) as
    its ``AIGC`` chunk; the file is complete after it returns.
    """

    def __init__(self, path: str | Path, label: AigcLabel | None = None) -> None:
        self.path = Path(path)
        self.label = label
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = sf.SoundFile(self.path, "w", SAMPLE_RATE_HZ, 1, subtype="FLOAT")
        self._queue: queue.SimpleQueue[AudioChunk | None] = queue.SimpleQueue()
        self._written = 0
        self._thread = threading.Thread(target=self._run_writer, name="livesinger-recorder",
                                        daemon=True)
        self._thread.start()

    def __call__(self, chunk: AudioChunk) -> None:
        """Queue a chunk for writing (never blocks the pacer)."""
        self._queue.put(chunk)

    @property
    def samples_written(self) -> int:
        """How many samples are in the file so far."""
        return self._written

    def _run_writer(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                if chunk.t > self._written:
                    self._file.write(np.zeros(chunk.t - self._written, dtype=np.float32))
                    self._written = chunk.t
                skip = self._written - chunk.t
                if skip < len(chunk.samples):
                    self._file.write(chunk.samples[skip:])
                    self._written = chunk.end
        finally:
            self._file.close()

    def close(self) -> None:
        """Write everything queued and finalise the WAV header."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
            if self.label is not None:
                write_wav_label(self.path, self.label)
        log.info("recorded %.2f s to %s", self._written / SAMPLE_RATE_HZ, self.path)


class PoseRecorder:
    """A pose sink writing ``DIR/pose.jsonl``: one ``PoseFrame`` JSON per line, as streamed,
    after a header line ``{"AIGC": {...}}`` when ``label`` is given."""

    def __init__(self, path: str | Path, label: AigcLabel | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8", buffering=1 << 16)
        if label is not None:
            self._file.write(label.to_json() + "\n")
        self.frames = 0
        self.rejected = 0
        """Frames not written because a number in them was not finite (not JSON)."""

    def __call__(self, frame: PoseFrame) -> None:
        """Append one frame (buffered; small); a frame that is not finite is dropped and
        counted, so every line stays strict JSON."""
        try:
            line = frame.to_json()
        except ValueError as err:
            self.rejected += 1
            log.warning("recorder: %s; dropped (%d so far)", err, self.rejected)
            return
        self._file.write(line + "\n")
        self.frames += 1

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()


def read_pose_track(path: str | Path) -> tuple[AigcLabel | None, list[dict[str, object]]]:
    """A recorded ``pose.jsonl``: its AIGC header (None for a track without one) and its frames
    as JSON objects; ``LabelError`` names a bad header, ``ValueError`` a line that is not JSON."""
    path = Path(path)
    label = None
    frames = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
            except ValueError as err:
                raise ValueError(f"{path}:{number}: not JSON ({err})") from None
            if number == 1 and isinstance(record, dict) and "AIGC" in record:
                label = AigcLabel.from_json(line)
            elif isinstance(record, dict) and "AIGC" in record:
                raise LabelError(f"{path}:{number}: an AIGC header after the first line")
            else:
                frames.append(record)
    return label, frames
