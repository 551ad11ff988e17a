#!/usr/bin/env bash
# Brings up a hub and a device on this machine with the embedded defaults and
# sends the photos of one folder through them.
#
#   scripts/demo.sh FOLDER [DATA_DIR]
#
# It builds release binaries, creates a classroom with its teacher, a parent
# with one child and a device in DATA_DIR (default ./guardian-demo, relative to
# where you run it), starts the hub (web page on
# http://127.0.0.1:8080, MQTT broker on 127.0.0.1:1883), runs the device over
# FOLDER until the hub has stored every photo, and leaves the hub running until
# Ctrl-C. The photos await the teacher's review: log in as the teacher, name the
# child on a face and release, then log in as the parent to see them.
# One-time codes land in DATA_DIR/hub/sms-outbox.jsonl.
set -euo pipefail

folder="${1:?usage: scripts/demo.sh FOLDER [DATA_DIR]}"
[[ -d "$folder" ]] || { echo "error: $folder is not a folder" >&2; exit 2; }
folder="$(cd "$folder" && pwd)"
mkdir -p "${2:-guardian-demo}"
data="$(cd "${2:-guardian-demo}" && pwd)"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# guardian-device's camera bindings are generated with libclang at build time.
if command -v dpkg >/dev/null && ! dpkg -s libclang-dev >/dev/null 2>&1; then
  if [[ $EUID -eq 0 ]]; then
    apt-get update && apt-get install -y --no-install-recommends libclang-dev
  else
    echo "error: building guardian-device needs libclang; run: sudo apt-get install libclang-dev" >&2
    exit 1
  fi
fi
echo "building release binaries (the first build takes several minutes)..."
cargo build --release --locked --bin guardian-hub --bin guardian-device
target="${CARGO_TARGET_DIR:-target}"
hub="$target/release/guardian-hub"
device="$target/release/guardian-device"

phone="+34600000001"
password="demo-password-1"
teacher_phone="+34600000002"
teacher_password="demo-password-2"
if [[ ! -f "$data/device.json" ]]; then
    "$hub" --data-dir "$data/hub" classroom add Demo >/dev/null
    printf '%s\n' "$password" | "$hub" --data-dir "$data/hub" parent add \
        --name "Demo Parent" --phone "$phone" --classroom Demo >/dev/null
    child=$("$hub" --data-dir "$data/hub" child add --classroom Demo --name "Demo Child")
    "$hub" --data-dir "$data/hub" guardian link --phone "$phone" --child "$child" 2>/dev/null
    "$hub" --data-dir "$data/hub" device add --classroom Demo \
        --broker 127.0.0.1:1883 --out "$data/device.json" >/dev/null
fi
# Every time, so that a data directory made before teachers reviewed photos
# gets one too; for an existing teacher it changes nothing.
if ! out=$("$hub" --data-dir "$data/hub" teacher add --name "Demo Teacher" \
        --phone "$teacher_phone" --classroom Demo <<<"$teacher_password" 2>&1 >/dev/null); then
    echo "$out" >&2
    exit 1
fi

# The last run's output goes first: the background shell truncates the file only
# when it gets round to it, and the loop below would read the old "listening" line.
rm -f "$data/hub-serve.out"
"$hub" --data-dir "$data/hub" serve > "$data/hub-serve.out" 2> "$data/hub.log" &
hub_pid=$!
trap 'kill $hub_pid 2>/dev/null || true' EXIT

# Says why the hub did not start, from its own log, and stops before any photo
# is sent: with the ports taken, the device would reach whatever holds them.
hub_failed() {
    echo "error: the hub did not start: $1" >&2
    echo "the hub's log ($data/hub.log) ends with:" >&2
    tail -n 20 "$data/hub.log" >&2
    echo "if another program holds 127.0.0.1:8080 or 127.0.0.1:1883, stop it and run again" >&2
    exit 1
}
# The hub waits up to 15 s for its own broker login; 30 s covers that.
listening=""
for _ in $(seq 1 300); do
    if grep -q '^http=.* mqtt=' "$data/hub-serve.out" 2>/dev/null; then
        listening=$(head -n1 "$data/hub-serve.out")
        break
    fi
    kill -0 "$hub_pid" 2>/dev/null || hub_failed "it exited"
    sleep 0.1
done
[[ -n "$listening" ]] || hub_failed "it printed no \"http=... mqtt=...\" line within 30 s"
kill -0 "$hub_pid" 2>/dev/null || hub_failed "it exited just after starting"
echo "hub listening: $listening"

"$device" --provision "$data/device.json" --data-dir "$data/device" \
    run --source "dir:$folder" --exit-when-synced --timeout 900

echo
echo "Open http://127.0.0.1:8080. New photos reach no parent until a teacher reviews them:"
echo "  1. log in as the teacher, $teacher_phone / $teacher_password: name \"Demo Child\" on a"
echo "     face of each photo you want the parent to see, and release it (a photo with no"
echo "     face needs you to confirm there is none);"
echo "  2. log out and log in as the parent, $phone / $password."
echo "One-time codes are written to $data/hub/sms-outbox.jsonl (development SMS provider)."
echo "Press Ctrl-C to stop the hub."
wait "$hub_pid"
