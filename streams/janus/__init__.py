"""The show published once into a Janus SFU, which serves the viewers and fans out to edge
Janus servers (docs/janus.md)."""

from streams.janus.api import JanusError, JanusGone, JanusHandle, JanusSession
from streams.janus.publisher import JanusPublisher, Reconnect
from streams.janus.target import JanusTarget, JanusTargetError, parse_target

__all__ = ["JanusError", "JanusGone", "JanusHandle", "JanusPublisher", "JanusSession",
           "JanusTarget", "JanusTargetError", "Reconnect", "parse_target"]
