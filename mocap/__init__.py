"""livesinger: mocap package."""
