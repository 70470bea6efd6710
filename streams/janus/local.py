"""A Janus of our own on this machine: a temporary configuration and the ``janus`` process.

Tests, benchmarks and ``docs/janus.md``'s walk-through run Debian's ``janus`` (1.1.x) with this:
only the HTTP transport (on its own port, on loopback), the VideoRoom and Streaming plugins,
its own RTP port range, and ICE on the machine's non-loopback address (Janus, like aioice,
leaves loopback out of ICE: peers on one machine meet on its other address).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
PLUGINS = ("libjanus_videoroom.so", "libjanus_streaming.so")
TRANSPORTS = ("libjanus_http.so",)


def janus_binary() -> str | None:
    """The ``janus`` program, or None where the Debian package is not installed."""
    return shutil.which("janus") or (
        "/usr/bin/janus" if Path("/usr/bin/janus").exists() else None)


def ice_address() -> str:
    """The machine's IPv4 address that ICE uses (the one a default route leaves from; any
    non-loopback address otherwise)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with contextlib.suppress(OSError):
            sock.connect(("192.0.2.254", 9))  # no packet is sent: this only picks a route
            address = str(sock.getsockname()[0])
            if not address.startswith("127.") and address != "0.0.0.0":
                return address
    for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
        address = str(info[4][0])
        if not address.startswith("127."):
            return address
    raise OSError("no non-loopback IPv4 address: WebRTC peers (Janus, aioice) cannot meet")


def free_port() -> int:
    """A TCP port free right now on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalJanus:
    """``janus`` running from a temporary configuration; ``url`` is its HTTP API.

    ``stop()`` kills it and ``start()`` starts it again on the same ports (a restart, as when
    a media server goes away mid-show). Both block until done (``start`` until the HTTP API
    answers, a few hundred ms): from async code beside a running show, call them through
    ``asyncio.to_thread`` so the show's event loop never waits for them.
    """

    def __init__(self, folder: Path | None = None, http_port: int | None = None,
                 rtp_ports: tuple[int, int] | None = None) -> None:
        binary = janus_binary()
        if binary is None:
            raise FileNotFoundError("janus is not installed (Debian package 'janus')")
        self.binary = binary
        self.folder = Path(folder or tempfile.mkdtemp(prefix="livesinger-janus-"))
        self.http_port = http_port or free_port()
        first = random.randrange(20000, 59000, 200)
        self.rtp_ports = rtp_ports or (first, first + 199)
        self.ice_ip = ice_address()
        self.process: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def url(self) -> str:
        """The HTTP API, e.g. ``http://127.0.0.1:PORT/janus``."""
        return f"http://127.0.0.1:{self.http_port}/janus"

    @property
    def log_path(self) -> Path:
        return self.folder / "janus.log"

    def _write_config(self) -> None:
        folder = self.folder
        for sub, names in (("plugins", PLUGINS), ("transports", TRANSPORTS)):
            (folder / sub).mkdir(parents=True, exist_ok=True)
            for name in names:
                link = folder / sub / name
                if not link.exists():
                    link.symlink_to(JANUS_LIB / sub / name)
        (folder / "none").mkdir(exist_ok=True)
        low, high = self.rtp_ports
        (folder / "janus.jcfg").write_text(f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{folder}/plugins"
    transports_folder = "{folder}/transports"
    events_folder = "{folder}/none"
    loggers_folder = "{folder}/none"
    debug_level = 4
    session_timeout = 60
}}
media: {{
    rtp_port_range = "{low}-{high}"
}}
nat: {{
    ice_enforce_list = "{self.ice_ip}"
    ignore_mdns = true
}}
""")
        (folder / "janus.transport.http.jcfg").write_text(f"""general: {{
    json = "compact"
    base_path = "/janus"
    http = true
    port = {self.http_port}
    ip = "127.0.0.1"
    https = false
}}
admin: {{
    admin_http = false
}}
""")
        for plugin in ("videoroom", "streaming"):
            (folder / f"janus.plugin.{plugin}.jcfg").write_text("general: {\n}\n")

    def start(self, timeout_s: float = 15.0) -> None:
        """Start ``janus`` and wait until its HTTP API answers (``RuntimeError`` if never)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-F", str(self.folder), "-C", str(self.folder / "janus.jcfg"),
             "-o"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/info", timeout=1) as res:
                    if res.status == 200:
                        return
            time.sleep(0.05)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"janus did not start on port {self.http_port}:\n{tail}")

    def stop(self) -> None:
        """Kill ``janus`` (SIGKILL: it goes away as a crashed server would)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> LocalJanus:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
