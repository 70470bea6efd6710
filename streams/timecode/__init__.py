"""SMPTE timecode in and out: MIDI Time Code (quarter frames, full frames) and LTC audio
(docs/timecode.md)."""
