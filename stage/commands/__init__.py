"""Sub-commands of `livesinger` that are not a show: mix, provenance, voices."""
