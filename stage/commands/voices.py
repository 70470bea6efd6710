"""``livesinger voices``, ``voice check`` and the voice references of ``render --voice``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from singer.backends.contract import VoiceBackend, VoiceInfo
    from singer.score import Score

EXIT_PROBLEMS = 2
VOICE_HELP = ("a built-in voice (soprano, tenor), a bank's name from the voices folders, or a "
              "path to a UTAU/DiffSinger bank folder")
VOICES_DIR_HELP = ("a folder of voicebanks (repeatable); also searched: $LIVESINGER_VOICES, "
                   "then ~/.local/share/livesinger/voices")


class VoiceRefError(Exception):
    """A voice reference that cannot be used (the CLI prints it as one line, exit 2)."""


def add_commands(sub: Any) -> None:
    """Register ``voices`` and ``voice check`` on the top-level subparsers."""
    p = sub.add_parser("voices", help="list the voices: built-in and banks in the voices folders",
                       description="List the built-in voices and every voicebank (UTAU, "
                                   "DiffSinger) found in the voices folders, with type, "
                                   "languages, speakers and licence/readme terms.")
    p.add_argument("--voices", metavar="DIR", action="append", default=[], help=VOICES_DIR_HELP)
    p.add_argument("--json", action="store_true", help="one JSON object per voice")
    p.set_defaults(run=cmd_voices)
    p = sub.add_parser("voice", help="check a voicebank folder (docs/voices.md)")
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    a = actions.add_parser("check", help="say exactly what is wrong with a bank (exit 2 if "
                                         "anything is)")
    a.add_argument("path", help="a UTAU or DiffSinger bank folder")
    a.set_defaults(run=cmd_voice_check)


def cmd_voices(args: argparse.Namespace) -> int:
    """``livesinger voices``: what ``--voice`` can name."""
    from singer.backends.discovery import find_voices, voices_dirs

    dirs = voices_dirs(args.voices)
    infos = find_voices(dirs)
    if args.json:
        for info in infos:
            print(json.dumps(info.to_json(), ensure_ascii=False), flush=True)
        return 0
    for info in infos:
        langs = ",".join(info.languages) or "?"
        line = f"{info.name:16s} {info.type:10s} [{langs}]"
        if info.speakers:
            line += f" speakers: {', '.join(info.speakers)}"
        if info.path is not None:
            line += f" {info.path}"
        if info.description:
            line += f" — {info.description}"
        print(line)
        if info.type != "builtin":
            print(f"{'':16s} terms: {info.terms or '(no licence or readme file found)'}")
    print(f"voices folders: {', '.join(str(d) for d in dirs)}")
    return 0


def cmd_voice_check(args: argparse.Namespace) -> int:
    """``livesinger voice check PATH``: every problem, one line each; exit 2 if any."""
    from singer.backends.discovery import check_voice, describe_bank

    path = Path(args.path)
    problems = check_voice(path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"livesinger: error: {path}: {len(problems)} problem(s)", file=sys.stderr)
        return EXIT_PROBLEMS
    info = describe_bank(path)
    print(f"{path}: ok ({info.type} bank {info.name!r}, languages "
          f"{','.join(info.languages) or '?'})")
    return 0


def resolve_refs(arg: str | None, default: str, dirs: list[str]) -> list[VoiceInfo]:
    """The voices a ``--voice`` argument names (comma-separated, one per part)."""
    from singer.backends.contract import VoiceError
    from singer.backends.discovery import resolve_voice

    try:
        return [resolve_voice(ref, dirs) for ref in (arg or default).split(",")]
    except VoiceError as err:
        raise VoiceRefError(str(err)) from None


def open_backends(infos: list[VoiceInfo], device: str | None = None, *,
                  warm: bool = False, steps: int | None = None) -> list[VoiceBackend]:
    """The loaded backends, warmed up for a live show when ``warm`` (offline, a UTAU bank
    analyses only the samples the score uses); a bank that cannot be loaded is a
    ``VoiceRefError`` naming the file."""
    from singer.backends.discovery import open_backend

    out: list[VoiceBackend] = []
    try:
        for info in infos:
            backend = open_backend(info, device=device, steps=steps)
            if warm:
                backend.warm_up()
            out.append(backend)
    except (ValueError, OSError) as err:  # BankError, UnknownSyllableError, unreadable files
        raise VoiceRefError(str(err)) from None
    return out


def check_song_lyrics(score: Score, backends: list[VoiceBackend]) -> None:
    """``VoiceRefError`` (one line: the bank, the part, the note and its syllable) if a bank
    cannot sing a lyric of the part it sings (parts take the backends in order, the last one
    repeats), before anything is rendered."""
    from singer.backends.live import BankRef, check_lyrics

    for i, part in enumerate(score.parts):
        info = backends[min(i, len(backends) - 1)].info
        if info.type == "builtin" or not part.notes:
            continue
        try:
            check_lyrics(BankRef.of(info), part.notes, f"part {part.name!r}")
        except (ValueError, OSError) as err:
            raise VoiceRefError(str(err)) from None


def render_with_backends(score: Score, infos: list[VoiceInfo], seed: int,
                         progress: Callable[[int, int], None] | None = None,
                         steps: int | None = None) -> np.ndarray:
    """``score`` sung through the backend contract; a bank that cannot be loaded or a
    syllable it cannot sing is a ``VoiceRefError`` naming the file / syllable."""
    from singer.backends.contract import VoiceError
    from singer.backends.diffsinger.errors import BankError as DsBankError
    from singer.backends.utau.errors import BankError as UtauBankError
    from singer.lyrics.errors import LyricError
    from singer.render import render_score_with

    backends = open_backends(infos, steps=steps)
    check_song_lyrics(score, backends)
    try:
        return render_score_with(score, backends, seed=seed, progress=progress)
    except (VoiceError, DsBankError, UtauBankError, LyricError) as err:
        raise VoiceRefError(str(err)) from None


def live_voice_name(ref: str, dirs: list[str] | None = None) -> str:
    """The voice for ``demo``/``serve``: a built-in name as it is, a bank as its folder (so
    the show's consent check and the synthesis process find it by path)."""
    from singer.voices import VOICES

    if ref.strip().lower() in VOICES:
        return ref.strip().lower()
    (info,) = resolve_refs(ref, ref, dirs or [])
    return str(info.path) if info.path is not None else info.name
