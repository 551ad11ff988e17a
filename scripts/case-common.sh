# shellcheck shell=bash
# Shared by the long field-case runs (scripts/case-c26-*.sh, case-c30-*.sh);
# sourced, not run. It builds release binaries, makes a scratch school under
# /tmp with the hub's command line exactly as the README documents, starts
# the hub and the kiosk (a camera replaying the shared photos, keys on a
# FIFO), and stops what it started when the script exits.
#
# Every process here is started by the script and stopped by its own pid.

# The teacher's PIN and password in the scratch school.
CASE_PIN=2580
CASE_PASSWORD="case-run-password"
CASE_TEACHER_PHONE="+34600000026"
CASE_CLASSROOM="Cases"

case_die() {
    echo "error: $*" >&2
    exit 1
}

# Stops with an install hint when the sqlite3 shell is missing.
case_require_sqlite3() {
    command -v sqlite3 >/dev/null ||
        case_die "this run needs the sqlite3 shell; install it with: sudo apt-get install sqlite3"
}

# Builds the release binaries; sets hub_bin and device_bin.
case_build() {
    local repo
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    if command -v dpkg >/dev/null && ! dpkg -s libclang-dev >/dev/null 2>&1; then
        case_die "building guardian-device needs libclang; install it with: sudo apt-get install libclang-dev"
    fi
    echo "building release binaries (the first build takes several minutes)..." >&2
    (cd "$repo" && cargo build --release --locked --bin guardian-hub --bin guardian-device) >&2
    local target="${CARGO_TARGET_DIR:-target}"
    [[ "$target" = /* ]] || target="$repo/$target"
    hub_bin="$target/release/guardian-hub"
    device_bin="$target/release/guardian-device"
}

# Makes the scratch directory (removed at exit unless KEEP=1) and the camera
# folder of shared photos; sets scratch.
case_scratch() {
    local name="$1"
    local repo shared
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    shared="${GUARDIAN_SHARED:-$repo/../shared}"
    [[ -f "$shared/testdata/faces.json" ]] ||
        case_die "the shared test photos are missing: expected $shared/testdata/faces.json; set GUARDIAN_SHARED"

    scratch="$(mktemp -d "/tmp/guardian-$name.XXXXXX")"
    trap case_cleanup EXIT
    mkdir -p "$scratch/camera"
    cp "$shared/testdata/hopper.jpg" "$shared/testdata/voc_2008_001322.jpg" "$scratch/camera/"
}

# The hub's command line on the scratch data directory.
case_hub() {
    "$hub_bin" --data-dir "$scratch/hub" "$@"
}

# The same, quiet unless it fails.
case_hub_quiet() {
    local said
    said="$(case_hub "$@" 2>&1 >/dev/null)" || case_die "guardian-hub $*: $said"
}

# A classroom, its teacher with a password and a PIN.
case_school() {
    case_hub_quiet classroom add "$CASE_CLASSROOM"
    printf '%s\n' "$CASE_PASSWORD" | case_hub_quiet teacher add --name "Case Teacher" \
        --phone "$CASE_TEACHER_PHONE" --classroom "$CASE_CLASSROOM"
    printf '%s\n' "$CASE_PIN" | case_hub_quiet teacher pin --phone "$CASE_TEACHER_PHONE"
}

# Starts `serve` on loopback with MQTT on $1 (127.0.0.1:0 for a free port)
# and waits for its "http=… mqtt=…" line; sets hub_pid and mqtt.
hub_starts=0
case_start_hub() {
    local mqtt_listen="$1"
    hub_starts=$((hub_starts + 1))
    local out="$scratch/serve-$hub_starts.out"
    RUST_LOG="${RUST_LOG:-info,rumqttd=warn}" \
        "$hub_bin" --data-dir "$scratch/hub" serve --http 127.0.0.1:0 --mqtt "$mqtt_listen" \
        >"$out" 2>>"$scratch/hub.log" &
    hub_pid=$!
    local _
    for _ in $(seq 1 300); do
        [[ -s "$out" ]] && break
        kill -0 "$hub_pid" 2>/dev/null || { tail -n 20 "$scratch/hub.log" >&2; case_die "the hub did not start"; }
        sleep 0.1
    done
    mqtt="$(sed -n 's/.*mqtt=\([0-9.:]*\).*/\1/p' "$out")"
    [[ -n "$mqtt" ]] || case_die "the hub did not say where it listens"
}

# Stops the hub with signal $1 (default TERM) and waits for it.
case_stop_hub() {
    kill "-${1:-TERM}" "$hub_pid" 2>/dev/null || true
    wait "$hub_pid" 2>/dev/null || true
    hub_pid=""
}

# Registers the device against the running hub's broker.
case_add_device() {
    case_hub_quiet device add --classroom "$CASE_CLASSROOM" --broker "$mqtt" \
        --out "$scratch/device.json"
}

# Starts the kiosk: keys go in through fd 3, events land in events.jsonl,
# the log in device.log. Sets kiosk_pid.
case_start_kiosk() {
    mkfifo "$scratch/keys"
    "$device_bin" --provision "$scratch/device.json" --data-dir "$scratch/device" \
        kiosk --camera "replay:$scratch/camera" --stdin-keys --screen none \
        --min-free-mb 0 --language en \
        <"$scratch/keys" >"$scratch/events.jsonl" 2>"$scratch/device.log" &
    kiosk_pid=$!
    exec 3>"$scratch/keys"
}

# How many events of kind $1 the kiosk printed so far.
case_count() {
    grep -c "\"event\":\"$1\"" "$scratch/events.jsonl" || true
}

# Waits up to $2 seconds for the first event of kind $1.
case_wait_event() {
    local _
    for _ in $(seq 1 $(($2 * 10))); do
        [[ "$(case_count "$1")" -gt 0 ]] && return 0
        kill -0 "$kiosk_pid" 2>/dev/null || { tail -n 20 "$scratch/device.log" >&2; case_die "the kiosk stopped"; }
        sleep 0.1
    done
    case_die "no $1 event within $2 s; see $scratch/device.log"
}

# Waits for the teacher's PIN to arrive from the hub, then unlocks.
case_unlock() {
    case_wait_event pins_received 90
    printf '%s\n' "$CASE_PIN" >&3
    case_wait_event unlocked 30
}

# Photos waiting in the device's outbox (a short read of its own).
case_outbox_len() {
    sqlite3 -cmd '.timeout 5000' "$scratch/device/outbox.sqlite" 'SELECT count(*) FROM outbox;'
}

# One value from the hub's database.
case_hub_sql() {
    sqlite3 -cmd '.timeout 5000' "$scratch/hub/hub.sqlite" "$1"
}

case_cleanup() {
    exec 3>&- 4>&-
    local pid
    for pid in "${kiosk_pid:-}" "${hub_pid:-}" "${shell_pid:-}"; do
        if [[ -n "$pid" ]]; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    wait 2>/dev/null || true
    if [[ "${KEEP:-0}" = 1 ]]; then
        echo "scratch directory kept: $scratch" >&2
    else
        rm -rf "$scratch"
    fi
}
