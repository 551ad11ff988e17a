#!/usr/bin/env bash
# Builds guardian-device and guardian-hub for a Raspberry Pi with cross (cross-rs), which
# runs the build in a Docker or Podman container; see cross.toml for what goes into it.
#
#   scripts/build-pi.sh [TARGET]
#
# TARGET is aarch64-unknown-linux-gnu (the default: Pi 3, 4 and 5 with 64-bit Raspberry Pi
# OS) or armv7-unknown-linux-gnueabihf (Pi 2, 3 and 4 with 32-bit Raspberry Pi OS). The
# first build downloads the cross image and installs libclang in it; later ones reuse both.
set -euo pipefail

target="${1:-aarch64-unknown-linux-gnu}"
case "$target" in
  aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf) ;;
  *)
    echo "error: unknown target '$target'; use aarch64-unknown-linux-gnu (64-bit Raspberry Pi OS)" \
      "or armv7-unknown-linux-gnueabihf (32-bit)" >&2
    exit 2
    ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cross >/dev/null; then
  echo "error: cross is not installed; run: cargo install cross --version 0.2.5 --locked" >&2
  exit 1
fi

# cross takes docker, else podman, unless CROSS_CONTAINER_ENGINE names one.
engine="${CROSS_CONTAINER_ENGINE:-}"
if [[ -z "$engine" ]]; then
  if command -v docker >/dev/null; then
    engine=docker
  elif command -v podman >/dev/null; then
    engine=podman
  else
    echo "error: cross needs Docker or Podman and neither is installed;" \
      "install Docker Engine, or run: sudo apt-get install podman" >&2
    exit 1
  fi
fi
if ! "$engine" info >/dev/null 2>&1; then
  echo "error: $engine is installed but '$engine info' fails: start it" \
    "(sudo systemctl start docker) or give this user access to it (the docker group)" >&2
  exit 1
fi

# cross looks for Cross.toml by default; ours is cross.toml.
export CROSS_CONFIG="$PWD/cross.toml"
cross build --release --locked --target "$target" -p guardian-device -p guardian-hub

target_dir="$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
echo "built for $target:"
echo "  $target_dir/$target/release/guardian-device"
echo "  $target_dir/$target/release/guardian-hub"
