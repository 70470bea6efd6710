"""Follow mode during a show: armed, re-armed on another part and disarmed by cues
(``follow.start PART``, ``follow.stop`` over OSC, MQTT or the command line's ``--follow``),
and fed the performer's note events (``perform.note_on``) from any surface.

``FollowDesk`` owns at most one ``LiveFollow`` at a time and runs it inside its own
supervised helper (``run``); ``WithFollow`` puts it in front of the show's cue handler, so
every surface that speaks the ``Cue`` vocabulary reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from mocap.performer_audio import PushedAudioSource
from mocap.performer_midi import MidiEventQueue, PerformerMidiError
from mocap.webrtc_audio import WebRtcAudio
from singer.follow.follower import SilencePolicy
from stage.director import Director
from stage.follow.live import FollowError, LiveFollow
from streams.cue import Cue, CueError, CueHandler

log = logging.getLogger(__name__)

FOLLOW_KINDS = frozenset({"follow.start", "follow.stop", "perform.note_on",
                          "perform.note_off"})
"""The cue kinds the desk answers (every other cue goes to the show)."""
PAGE = "page"
"""``--performer-audio page``: the ``/perform`` page's microphone (over WebRTC)."""
NOTES = "notes"
"""A cue's ``input notes``: note events sent over OSC/MQTT (``perform.note_on``)."""
MIDI_SUFFIXES = (".mid", ".midi")


class FollowDesk:
    """Arms and disarms follow mode on the loaded song; its input is the one named on the
    command line (``audio``: a file, ``mic[:DEV]`` or ``page``; ``midi``: a port or a file),
    else the note events the surfaces send."""

    def __init__(self, director: Director, *, audio: str | None = None,
                 midi: str | None = None, on_silence: SilencePolicy = "hold") -> None:
        self.director = director
        self.audio = audio
        self.midi = midi
        self.on_silence: SilencePolicy = on_silence
        self.page_audio = PushedAudioSource(name="the /perform page's microphone") \
            if audio == PAGE else None
        """Where the ``/perform`` page's microphone is pushed (``--performer-audio page``)."""
        self.page_receiver: WebRtcAudio | None = None
        """The receiver pushing it there (set by the show when the page is served)."""
        self.live: LiveFollow | None = None
        self.arms = 0
        self.notes_heard = 0
        self._changed = asyncio.Event()
        director.follow_status = self.status

    @property
    def start_sample(self) -> int | None:
        """The show sample the armed follower started at (its part's beat 0)."""
        return self.live.start_sample if self.live is not None else None

    def arm(self, part: str, source: str | None = None) -> dict[str, object]:
        """Follow ``part`` of the loaded song from now, on the input ``source`` names
        (``streams.cue.FOLLOW_INPUTS``; ``None``: the command line's). ``FollowError``
        names what is wrong; a follower already running goes on until the new one is
        ready, and goes on for good when the new one is refused."""
        score = self.director.song
        if score is None:
            raise FollowError("no song loaded: load the duet score first (song.load)")
        audio, midi, pushed = self._input(source)
        live = LiveFollow(self.director, score, part, audio=audio, midi=midi, pushed=pushed,
                          on_silence=self.on_silence)
        # the clock's present sample: the playout sample is a chunk coarse and stands
        # still while playout stalls, which moved the input's stamps back and forth
        live.open(self.director.pacer.clock.now_sample)
        self._drop()
        self.live = live
        self.arms += 1
        self._changed.set()
        log.info("follow mode armed: %s follows %r (%s)", score.title, live.part.name,
                 live.input_name)
        return {"following": live.part.name, "input": live.input_name, "song": score.title}

    def _input(self, source: str | None
               ) -> tuple[str | None, str | None, PushedAudioSource | None]:
        """(audio, midi, pushed) for ``LiveFollow`` from a cue's ``input``."""
        if source is None:
            return None if self.audio == PAGE else self.audio, self.midi, self.page_audio
        if source == NOTES:
            return None, None, None
        if source == PAGE:
            if self.page_audio is None:
                raise FollowError("input page: this show does not receive the /perform "
                                  "page's microphone (start it with --mocap webrtc "
                                  "--performer-audio page)")
            return None, None, self.page_audio
        if source == "mic" or source.startswith("mic:"):
            return source, None, None
        if source.startswith("midi:"):
            ref = source.removeprefix("midi:")
            if Path(ref).suffix.lower() in MIDI_SUFFIXES:
                return None, str(self._file(ref, source)), None
            return None, ref, None
        return str(self._file(source, source)), None, None

    def _file(self, ref: str, source: str) -> Path:
        """A performer file a remote cue names: a regular file inside the song folders
        (resolved: no escaping through ``..`` or a link); the same one line for anything
        else, whether or not it exists."""
        for folder in self.director.songs.remote.folders:
            try:
                root = folder.resolve(strict=True)
                path = (root / ref).resolve(strict=True)
            except (OSError, RuntimeError, ValueError):
                continue
            if path.is_relative_to(root) and path.is_file():
                return path
        raise FollowError(f"input {source!r}: a cue names a performer file inside the song "
                          "folders (--songs), or notes, page, mic[:DEVICE], midi:PORT")

    def disarm(self) -> dict[str, object]:
        """Stop following: the idol's notes stay where they were last placed."""
        was = self.live.part.name if self.live is not None else None
        self._drop()
        self._changed.set()
        return {"following": None, "was": was}

    def note_on(self, pitch: float, velocity: float, at_sample: int | None) -> dict[str, object]:
        """A performer's note-on (``CueError`` when nothing listens to note events)."""
        queue = self._notes()
        # stamped with the instant it arrived (the playout sample is up to a chunk later)
        at = self.director.pacer.clock.now_sample() if at_sample is None else at_sample
        try:
            queue.note_on(pitch, velocity, at)
        except PerformerMidiError as err:
            raise CueError(str(err)) from None
        self.notes_heard += 1
        return {"heard_sample": at}

    async def handle(self, cue: Cue) -> object:
        """Apply a follow cue (``FOLLOW_KINDS``); ``CueError`` says why one is refused."""
        if cue.singer is not None:
            raise CueError(f"{cue.kind} addresses the performer: it takes no singer")
        try:
            if cue.kind == "follow.start":
                source = cue.args.get("input")
                return self.arm(str(cue.args["part"]),
                                None if source is None else str(source))
            if cue.kind == "follow.stop":
                return self.disarm()
        except FollowError as err:
            raise CueError(str(err)) from None
        if cue.kind == "perform.note_on":
            return self.note_on(float(cue.args["pitch"]),  # type: ignore[arg-type]
                                float(cue.args["velocity"]),  # type: ignore[arg-type]
                                cue.at_sample)
        if cue.kind == "perform.note_off":
            self._notes()  # refused the same way; the follower needs only note-ons
            return {"ignored": "note-offs are not needed to follow"}
        raise CueError(f"unknown command {cue.kind!r}")

    def _notes(self) -> MidiEventQueue:
        live = self.live
        if live is None:
            raise CueError("follow mode is not armed: send follow/start <part> first")
        if live.notes is None:
            raise CueError(f"follow mode listens to {live.input_name}, not to note events")
        return live.notes

    def status(self) -> dict[str, object]:
        """Follow mode's state (``follow`` in the show's status, MQTT and ``/status``)."""
        mic = {"page_microphone": self.page_receiver.stats()} if self.page_receiver else {}
        if self.live is None:
            return {"armed": False, "arms": self.arms, **mic}
        return {"armed": True, "arms": self.arms, "notes_heard": self.notes_heard,
                **self.live.status(), **mic}

    async def run(self) -> None:
        """The supervised helper: runs the armed follower until it ends, is disarmed or is
        replaced by another (a failure is raised for the supervisor, which restarts it)."""
        while True:
            live = self.live
            self._changed.clear()
            if live is None:
                await self._changed.wait()
                continue
            follow = asyncio.ensure_future(live.run())
            changed = asyncio.ensure_future(self._changed.wait())
            ended = switched = False
            try:
                await asyncio.wait({follow, changed}, return_when=asyncio.FIRST_COMPLETED)
                ended, switched = follow.done(), changed.done()
            finally:
                for task in (follow, changed):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if ended and (error := follow.exception()) is not None:
                raise error
            if ended and not switched:  # its input ended: wait for the next arm or stop
                await self._changed.wait()

    def _drop(self) -> None:
        if self.live is not None:
            self.live.close()
        self.live = None

    def close(self) -> None:
        """The show ends: close the input."""
        self._drop()
        if self.page_audio is not None:
            self.page_audio.close()


class WithFollow:
    """Passes cues to ``handler``, except the follow cues, which go to ``desk``."""

    def __init__(self, handler: CueHandler, desk: FollowDesk) -> None:
        self._handler = handler
        self.desk = desk

    async def handle(self, cue: Cue) -> object:
        """Apply or schedule ``cue``."""
        if cue.kind in FOLLOW_KINDS:
            return await self.desk.handle(cue)
        return await self._handler.handle(cue)

    def show_sample_at_unix(self, unix_s: float) -> int:
        """The show sample that plays at a wall-clock time (the show's own handler says)."""
        return self._handler.show_sample_at_unix(unix_s)

    def status(self) -> dict[str, object]:
        """The show's status (which carries ``follow`` from the Director)."""
        return self._handler.status()
