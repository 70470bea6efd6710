"""DiffSinger voicebanks (the OpenUtau layout) sung through onnxruntime.

``DiffSingerBank.load(folder)`` reads and validates a bank; ``PhraseRenderer`` renders
phrases of touching notes (cached by content), ``PhraseTrack`` sings a whole line
phrase-ahead with crossfaded joins, ``LiveNote`` sings a held live note in provisional
segments; ``check_bank`` lists what is wrong with a bank folder.
"""

from singer.backends.diffsinger.bank import DiffSingerBank, is_diffsinger_bank
from singer.backends.diffsinger.check import check_bank
from singer.backends.diffsinger.errors import BankError
from singer.backends.diffsinger.live import LiveNote
from singer.backends.diffsinger.phrases import (
    PhraseRenderer,
    PhraseTrack,
    mix,
    split_phrases,
)
from singer.backends.diffsinger.render import RenderedPhrase, RenderSettings, render_phrase

__all__ = ["BankError", "DiffSingerBank", "LiveNote", "PhraseRenderer", "PhraseTrack",
           "RenderSettings", "RenderedPhrase", "check_bank", "is_diffsinger_bank", "mix",
           "render_phrase", "split_phrases"]
