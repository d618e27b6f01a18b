#!/usr/bin/env bash
# Installs nero-ns and what it needs at run time on a fresh Debian machine.
# The README runs it as: pip install torch==2.14.1 torchvision==0.29.1 && ./install.sh
set -euo pipefail
cd "$(dirname "$0")"

# System libraries: libusb for open3d (imported by ns-export), colmap and ffmpeg for ns-process-data,
# libllvm19 for Mitsuba's fast CPU renderer (nero-synth, nero-relight fall back to a slower one without it),
# g++ for the CPU hash-grid kernel (the PyTorch grid, slower, runs without it), chromium for the test that opens
# ns-viewer's page in a headless browser.
SYSTEM_PACKAGES="libusb-1.0-0 colmap ffmpeg libllvm19 g++ chromium"
missing=""
for package in $SYSTEM_PACKAGES; do
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi

python3 -m pip install -q torch==2.14.1 torchvision==0.29.1
python3 -m pip install -q -e ".[dev]"
# Compile the CPU hash-grid kernel now (about a minute, once) rather than in the first training run.
python3 -c "from nero_ns.components.hash_grid_cpu import load_kernel; load_kernel()"
echo "nero-ns installed: try 'nero-demo --output-dir nero-demo' or 'ns-train nero-shape --help'"
