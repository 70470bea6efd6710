"""livesinger: stage package."""
