#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the bot needs, when missing.
# As root it runs apt-get; otherwise it says exactly what to install and fails.
set -euo pipefail

# festival + festvox-ru: the offline Russian voice (msu_ru_nsh_clunits), used by TTS_ENGINES=festival.
packages=(ffmpeg libopus0 espeak-ng festival festvox-ru openssl)
# Only the playground's browser tests need these: Debian's Chromium, driven by Playwright (never
# a browser download), and an emoji font so the bot's emoji show in the screenshots. Installed
# as root; otherwise their absence is only a warning, so running the bot never depends on them.
browser_packages=(chromium fonts-noto-color-emoji)
python3 -c "import ensurepip, venv" 2>/dev/null || packages+=(python3-venv)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for pkg in "${packages[@]}"; do installed "$pkg" || missing+=("$pkg"); done
missing_browser=()
for pkg in "${browser_packages[@]}"; do installed "$pkg" || missing_browser+=("$pkg"); done
if [ ${#missing_browser[@]} -gt 0 ] && { [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; }; then
  echo "Note: the browser tests need ${missing_browser[*]} (sudo apt-get install -y ${missing_browser[*]})." >&2
  missing_browser=()
fi
missing+=("${missing_browser[@]}")
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing system packages: ${missing[*]}. This is not a Debian/Ubuntu system: install ffmpeg," \
       "libopus, espeak-ng and festival (with its Russian voice, festvox-ru) with your package manager." >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages: ${missing[*]}." >&2
  echo "Install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing system packages: ${missing[*]}"
apt-get update -qq  # once, before installing
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
