"""Provenance of what the engine sings: AIGC labels (metadata) and the audio watermark."""
