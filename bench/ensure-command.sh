#!/usr/bin/env bash
# ensure-command.sh COMMAND PACKAGE: installs Debian's PACKAGE when COMMAND is not on PATH
# (run.sh: iperf3; breakdown.sh: tcpdump). apt-get update only if the install needs it.
set -euo pipefail
command -v "$1" >/dev/null && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq "$2" >/dev/null 2>&1 || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "$2" >/dev/null; }
