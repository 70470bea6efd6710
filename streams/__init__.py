"""livesinger: streams package."""
