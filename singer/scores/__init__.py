"""Score readers: MusicXML, MIDI, UST and USTX files into the one score model
(``singer.score``), behind one entry point, ``load.load_score``, with the limits every reader
enforces (``limits``)."""
