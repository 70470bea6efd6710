"""Synthesis in a process of its own: a shared-memory chunk ring, a small control pipe, and
the pacer that plays from it (``docs/synthesis.md``)."""

from stage.synthesis.pacer import ProcessPacer
from stage.synthesis.process import SynthesisProcess, SynthesisUnavailable
from stage.synthesis.ring import ChunkRing

__all__ = ["ChunkRing", "ProcessPacer", "SynthesisProcess", "SynthesisUnavailable"]

