"""Who may drive the show: the one token check every surface (web, OSC, MQTT) uses, and
which listening addresses stay on this machine.
"""

from __future__ import annotations

import hmac
import ipaddress

LOOPBACK_NAMES = ("localhost", "localhost.")
"""Host names that always mean this machine (besides 127.0.0.0/8 and ::1)."""


def token_matches(given: object, expected: str) -> bool:
    """Whether ``given`` is the secret ``expected``; compared in constant time, so the time
    taken says nothing about how much of it was right. Anything but a string is wrong."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name, as given to ``--host`` or in a ``Host`` header
    without its port) only reaches this machine."""
    name = host.strip().lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False
