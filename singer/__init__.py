"""livesinger: singer package."""
