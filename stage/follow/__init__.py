"""The duet follower in a show: live following, its desk, `livesinger duet` (files and
MIDI ports)."""
