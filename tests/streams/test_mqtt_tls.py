"""MQTT secured at the broker, as docs/mqtt.md says: a real mosquitto with TLS, a password file
and an ACL; the engine connects with ``mqtts://user:password@host`` and trusts the show's CA
through ``SSL_CERT_FILE``."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from streams.mqtt import MqttBridge
from tests.streams.test_mqtt import Broker, free_port
from tests.streams.test_osc import RecordingHandler, until

pytestmark = pytest.mark.timeout(60)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a broker certificate for 127.0.0.1 signed by it (openssl)."""
    ca_key, ca, key, csr, crt = (folder / n for n in ("ca.key", "ca.pem", "b.key", "b.csr",
                                                       "b.pem"))
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out",
            str(ca), "-days", "2", "-subj", "/CN=show CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return ca, crt, key


async def test_mqtts_with_a_password_and_an_acl_drives_the_show(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca, crt, key = make_certificates(tmp_path)
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "engine", "p@ss word"],
                   check=True, capture_output=True, timeout=30)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "console", "c0nsole"],
                   check=True, capture_output=True, timeout=30)
    acl = tmp_path / "acl"
    acl.write_text("user engine\ntopic read livesinger/tls/cmd/#\ntopic write livesinger/tls/#\n"
                   "user console\ntopic write livesinger/tls/cmd/#\n"
                   "topic read livesinger/tls/reply\n")
    broker = Broker(tmp_path)
    broker.port = free_port()
    broker.config.write_text(
        f"listener {broker.port} 127.0.0.1\ncertfile {crt}\nkeyfile {key}\n"
        f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\npersistence false\n"
        "user root\n")  # as root, mosquitto would drop to a user that cannot read tmp_path
    await broker.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    handler = RecordingHandler()
    bridge = MqttBridge(handler, url=f"mqtts://engine:p%40ss%20word@127.0.0.1:{broker.port}",
                        show="tls")
    assert (bridge.host, bridge.port, bridge._username, bridge._password, bridge._tls) == (
        "127.0.0.1", broker.port, "engine", "p@ss word", True)
    task = asyncio.ensure_future(bridge.run())
    try:
        await until(lambda: bridge.connected, timeout=10)
        tls = ["--cafile", str(ca), "-h", "127.0.0.1", "-p", str(broker.port)]
        # the console, with its own account, sends a cue over TLS: the engine applies it
        pub = await asyncio.create_subprocess_exec(
            "mosquitto_pub", *tls, "-u", "console", "-P", "c0nsole",
            "-t", "livesinger/tls/cmd/tempo", "-m", '{"bpm": 96}')
        assert await pub.wait() == 0
        await until(lambda: len(handler.cues) == 1, timeout=10)
        assert handler.cues[0].kind == "tempo" and handler.cues[0].args["bpm"] == 96
        # a client without an account is refused by the broker
        anonymous = await asyncio.create_subprocess_exec(
            "mosquitto_pub", *tls, "-t", "livesinger/tls/cmd/go", "-m", "{}",
            stderr=asyncio.subprocess.PIPE)
        _, err = await anonymous.communicate()
        assert anonymous.returncode != 0 and b"not authorised" in err.lower().replace(
            b"authorized", b"authorised")
        assert len(handler.cues) == 1
        assert bridge.outages == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await broker.stop()
