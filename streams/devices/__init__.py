"""Local devices: the sound card and MIDI ports."""
