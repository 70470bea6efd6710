#!/usr/bin/env bash
# Installs everything livesinger needs on a fresh Debian machine (root, Python 3.11):
# Debian packages when missing, the virtualenv .venv, Python packages, npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
command -v oscsend >/dev/null 2>&1 || need_apt+=(liblo-tools)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v janus >/dev/null 2>&1 || need_apt+=(janus)
ldconfig -p 2>/dev/null | grep -q libportaudio.so.2 || need_apt+=(libportaudio2)
# JACK: MIDI ports where there is no ALSA sequencer (containers), and the tests' MIDI ports
command -v jackd >/dev/null 2>&1 || need_apt+=(jackd2)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Debian packages: ${need_apt[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # jackd2 asks whether to allow real-time scheduling: no (the tests run it without)
        echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections \
            2>/dev/null || true
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
        # the broker is started by the tests on their own ports, never as a service
        if command -v systemctl >/dev/null 2>&1; then systemctl disable --now mosquitto \
            >/dev/null 2>&1 || true; fi
        # so is Janus (the broadcast fan-out, docs/janus.md)
        if command -v systemctl >/dev/null 2>&1; then systemctl disable --now janus \
            >/dev/null 2>&1 || true; fi
    else
        echo "setup: please install these Debian packages: ${need_apt[*]}" >&2
    fi
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    echo "setup: installing Python packages into .venv (first time takes a few minutes)"
    .venv/bin/python -m pip install -q --upgrade pip
    # torch is pinned in pyproject.toml: pip takes the CPU wheel this machine already has.
    .venv/bin/python -m pip install -q -e '.[test]'
    touch .venv/.installed
fi

if [ -f stage/web/package.json ]; then
    if [ ! -d stage/web/node_modules ] || [ stage/web/package-lock.json -nt stage/web/node_modules ]; then
        echo "setup: installing the stage page's npm packages"
        (cd stage/web && npm ci --no-audit --no-fund --loglevel=error)
    fi
fi
