"""Classic UTAU voicebanks sung in-process on the show clock.

- ``UtauBank.load(folder)``: ``character.txt``/``character.yaml``, every ``oto.ini``
  (recursively), ``prefix.map``, ``presamp.ini``; ``BankError`` names file and line.
- ``UtauLine(bank, notes)``: ``render(start, n)`` (chunked equals whole), ``note_on`` /
  ``note_off`` for live notes, ``set_notes`` for edits; WORLD analysis cached on disk
  (``SampleAnalyser``).
- ``check_bank(folder)``: every problem of a bank, one line each.
"""

from singer.backends.utau.analysis import SampleAnalyser, default_cache_dir
from singer.backends.utau.bank import UtauBank
from singer.backends.utau.check import check_bank
from singer.backends.utau.errors import BankError, UnknownSyllableError
from singer.backends.utau.line import LiveNote, UtauLine
from singer.backends.utau.oto import OtoEntry
from singer.backends.utau.pitch import F0Source
from singer.backends.utau.plan import Unit, plan_units

__all__ = ["BankError", "F0Source", "LiveNote", "OtoEntry", "SampleAnalyser", "Unit",
           "UnknownSyllableError", "UtauBank", "UtauLine", "check_bank", "default_cache_dir",
           "plan_units"]
