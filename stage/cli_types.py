"""Argument types for the command line: every port, address and URL is checked as it is
parsed, so a bad one is one argparse error line (exit 2), never a traceback from inside a
running show."""

from __future__ import annotations

import argparse


def listen_port(text: str) -> int:
    """A port to listen on: 0..65535 (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (want 0..65535; 0: any free "
                                         "port)")
    return port


def host_port(text: str) -> str:
    """``HOST:PORT`` to send to (port 1..65535); returned as given."""
    from stage.mocap import parse_host_port

    if ":" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: want HOST:PORT")
    try:
        parse_host_port(text, 0)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{err} (want HOST:PORT, port 1..65535)") from None
    return text


def mqtt_url(text: str) -> str:
    """A broker URL ``mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT]``; returned as given."""
    from streams.mqtt import parse_url

    try:
        parse_url(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def mocap_source(text: str) -> str:
    """A ``--mocap``/``--source`` spec; ``vmc[:[HOST:]PORT]`` has its port checked here (the
    other kinds are opened, and checked, when the show starts)."""
    if text != "vmc" and not text.startswith("vmc:"):
        return text
    rest = text.removeprefix("vmc:") if text != "vmc" else ""
    if rest:
        port = rest.rpartition(":")[2]
        try:
            listen_port(port)
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"{text!r}: {err} (want vmc, vmc:PORT or "
                                             "vmc:HOST:PORT)") from None
    return text


def ice_server(text: str) -> str:
    """A STUN/TURN URL (``streams.webrtc.ice``); returned as given."""
    from streams.webrtc.ice import IceServerError, parse_ice_server

    try:
        parse_ice_server(text)
    except IceServerError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def publish_target(text: str) -> str:
    """A ``--publish`` target, ``janus:http://HOST:PORT/janus?room=N[&secret=S]``; returned as
    given (``streams.janus.target``)."""
    from streams.janus.target import JanusTargetError, parse_target

    try:
        parse_target(text)
    except JanusTargetError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text
