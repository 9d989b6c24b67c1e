#!/usr/bin/env bash
# Install the Debian packages oorfix's venv, tests and demo need, when they are missing and we
# are root. A no-op when everything is present. PYTHON is the interpreter the venv is made with.
set -euo pipefail
python=${PYTHON:-python3}
need=()
# Debian ships venv's ensurepip (and so `python3 -m venv`) apart, in python3-venv.
if ! command -v "$python" >/dev/null; then
    need+=(python3 python3-venv)
elif ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    need+=(python3-venv)
fi
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v ip >/dev/null || need+=(iproute2)
command -v timeout >/dev/null || need+=(coreutils)
command -v curl >/dev/null || need+=(curl)
# The HTML incident report is checked in a real headless browser.
[ -x /usr/bin/chromium ] || need+=(chromium fonts-liberation)
command -v pgrep >/dev/null || need+=(procps)  # the tests find and reap processes with pgrep
# The service's alert path is tested against a real Alertmanager on loopback.
[ -x /usr/bin/prometheus-alertmanager ] || need+=(prometheus-alertmanager)
# Privilege escalation (become) is tested with a real sudo and a throwaway user.
command -v sudo >/dev/null || need+=(sudo)
# Shared state for teams (locks, budgets, audit, history) is tested against a real Redis.
[ -x /usr/bin/redis-server ] || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root, or install them: apt-get install ${need[*]})" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
