"""Following a live performer: pitch and onsets heard, the score position and tempo tracked,
the idol's notes re-timed to match (see docs/follow.md)."""
