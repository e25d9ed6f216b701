#!/usr/bin/env bash
# Install the Debian/Ubuntu packages lamp needs (headless GL for MuJoCo, shellcheck), and python3-venv if missing.
# Skips apt when everything is already present, so it also works on machines where you are not root.
set -euo pipefail

packages=("$@")
if ! python3 -m venv --help >/dev/null 2>&1; then
  packages+=(python3-venv)
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: missing system packages (${missing[*]}) and no apt-get; install their equivalents by hand" >&2
  exit 2
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "error: need root to install ${missing[*]}; run: apt-get install ${missing[*]}" >&2
    exit 2
  fi
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
