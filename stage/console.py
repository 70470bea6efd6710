"""What the director's console shows besides the show's status: the health of every part of
the running engine (viewers, WHEP, performer camera, mocap, OSC/MQTT, CPU, helpers), and the
songs and voices to choose from. ``serve`` fills in the parts it runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singer.library import SongLibrary
from singer.score import ScoreError
from singer.voices import VOICES
from stage.pacer import AudioPacer
from stage.song_loader import default_song_folders

MAX_SONGS = 500
"""Songs listed on the console at most."""


@dataclass
class ShowHealth:
    """Gathers the parts' counters for the console (``__call__``: a JSON-ready dict).

    Parts are set as ``serve`` creates them; those left ``None`` are not shown."""

    pacer: AudioPacer
    hub: Any = None
    """``streams.webrtc.viewers.ViewerHub``: the stage pages and WHEP sessions."""
    performer: Any = None
    """``streams.webrtc.performer.PerformerDesk``: the performer's camera."""
    mocap: Any = None
    """The capture feed (``stage.mocap``)."""
    osc: Any = None
    mqtt: Any = None
    helpers: Any = None
    """``stage.supervise.Supervisor``: helper restarts."""
    _cpu: tuple[float, float] = field(default_factory=lambda: (time.monotonic(),
                                                               time.process_time()))
    period_s: float = 0.5
    """Counters are gathered at most this often (rates are over this window)."""
    _frames_read: int = 0
    _last: dict[str, object] | None = None

    def __call__(self) -> dict[str, object]:
        """The counters now (rates over the last ``period_s`` or more)."""
        now, cpu = time.monotonic(), time.process_time()
        wall = now - self._cpu[0]
        if self._last is not None and wall < self.period_s:
            return self._last
        cpu_percent = 100.0 * (cpu - self._cpu[1]) / wall if wall > 0 else 0.0
        self._cpu = (now, cpu)
        pacer = self.pacer
        out: dict[str, object] = {
            "cpu_percent": round(cpu_percent, 1),
            "xruns": pacer.xruns, "late_edits": pacer.late_edits,
            "stale_chunks": pacer.stale_chunks,
            "edit_turnaround_ms": round(max(pacer.edit_turnaround_ms), 2)
            if pacer.edit_turnaround_ms else None,
        }
        if self.hub is not None:
            viewers = [v.stats() for v in self.hub.viewers.values()]
            out["viewers"] = [v for v in viewers if v.get("kind") == "stage"]
            out["whep"] = [v for v in viewers if v.get("kind") == "whep"]
        if self.performer is not None:
            out["performer"] = self.performer.stats()
        if self.mocap is not None:
            out["mocap"] = self._mocap(wall)
        if self.osc is not None:
            out["osc"] = {"messages_ok": self.osc.messages_ok,
                          "bad_packets": self.osc.bad_packets,
                          "errors": sum(self.osc.errors.values())}
        if self.mqtt is not None:
            out["mqtt"] = self.mqtt.counters()
        if self.helpers is not None:
            out["helper_restarts"] = {k: v for k, v in self.helpers.restarts.items() if v}
        self._last = out
        return out

    def _mocap(self, wall_s: float) -> dict[str, object]:
        """The capture's source, frames a second and tracking (VMC in: its counters)."""
        if hasattr(self.mocap, "stats"):
            return dict(self.mocap.stats())
        capture = self.mocap.capture
        stats = capture.stats
        fps = (stats.read - self._frames_read) / wall_s if wall_s > 0 else 0.0
        self._frames_read = stats.read
        return {"source": str(getattr(capture.source, "name", type(capture.source).__name__)),
                "fps": round(fps, 1), "read": stats.read, "tracked": stats.tracked,
                "lost": stats.lost, "dropped": stats.dropped}


def catalog(songs: Path | None = None) -> dict[str, object]:
    """The songs a console may load (library names) and the voices it may pick."""
    folders = [songs] if songs is not None else default_song_folders()
    names: list[str] = []
    for folder in folders:
        try:
            names += [n for n in SongLibrary(folder).names() if n not in names]
        except ScoreError:  # a configured folder that is gone offers nothing
            continue
    return {"songs": names[:MAX_SONGS], "voices": sorted(VOICES)}
