"""livesinger: rigs package."""
