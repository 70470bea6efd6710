"""Timecode in a show: chasing MTC/LTC and sending MTC."""
