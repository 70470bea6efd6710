"""``ListenError``: a surface that could not bind its port, said in one line.

Every listening surface (OSC, the web server, VMC) raises or is wrapped into it, so that
``serve`` can stop what it already started and the CLI can print, e.g.
``OSC cannot listen on 127.0.0.1:9000/udp: address already in use`` and exit 2.
"""

from __future__ import annotations

import os
import socket


class ListenError(OSError):
    """A surface could not listen (or open its socket); ``str()`` is the one-line reason."""

    def __init__(self, surface: str, host: str, port: int, transport: str,
                 err: OSError) -> None:
        self.surface, self.host, self.port, self.transport = surface, host, port, transport
        where = f"[{host}]" if ":" in host else host
        message = f"{surface} cannot listen on {where}:{port}/{transport}: {reason(err)}"
        super().__init__(err.errno, message)

    def __str__(self) -> str:
        return str(self.strerror)


def reason(err: OSError) -> str:
    """Why a socket call failed, in a few lowercase words (``address already in use``)."""
    if isinstance(err, ListenError):
        return str(err)
    if isinstance(err, socket.gaierror) or not err.errno or err.errno < 0:
        text = err.strerror or str(err) or type(err).__name__
    else:
        text = os.strerror(err.errno)
    return text[:1].lower() + text[1:]
