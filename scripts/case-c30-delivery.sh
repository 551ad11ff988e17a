#!/usr/bin/env bash
# Field case C30, the long run: the kiosk streams 200 captures; mid-stream
# the hub and its embedded broker go away for 60 s (killed, as by a cut
# cable or a crash) and come back on the same ports, and once they are
# back the broker is restarted once more (stopped with SIGTERM, started at
# once) while the device delivers its backlog. Prints figures;
# `cargo test --test delivery_cases` holds the CI-size check.
#
#   scripts/case-c30-delivery.sh
#   CAPTURES=100 OUTAGE=20 scripts/case-c30-delivery.sh
#
# CAPTURES   photos to capture (default 200)
# OUTAGE     seconds the hub and broker stay away (default 60)
# INTERVAL   seconds between capture presses (default 0.5)
# KEEP=1     keep the scratch directory under /tmp (logs, databases)
# GUARDIAN_SHARED   the shared test photos (default ../shared)
#
# The outage starts at a quarter of the captures; capture goes on meanwhile.
# Everything runs on loopback in a scratch directory under /tmp. Needs the
# sqlite3 shell.
set -euo pipefail

# shellcheck source=scripts/case-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/case-common.sh"

captures="${CAPTURES:-200}"
outage="${OUTAGE:-60}"
interval="${INTERVAL:-0.5}"
[[ "$captures" =~ ^[0-9]+$ && "$outage" =~ ^[0-9]+$ ]] ||
    case_die "CAPTURES and OUTAGE must be whole numbers"

case_require_sqlite3
case_build
case_scratch c30
case_school
case_start_hub 127.0.0.1:0
case_add_device
case_start_kiosk
case_unlock
mqtt_listen="$mqtt"

# Presses capture and waits for the answer; a refusal stops the run.
capture_one() {
    local before
    before="$(case_count captured)"
    printf 'capture\n' >&3
    local _
    for _ in $(seq 1 600); do
        (($(case_count captured) > before)) && return 0
        if (($(case_count capture_refused) + $(case_count capture_failed) > 0)); then
            grep '"event":"capture_\(refused\|failed\)"' "$scratch/events.jsonl" >&2
            case_die "a capture press was refused"
        fi
        sleep 0.1
    done
    case_die "a capture press got no answer within a minute"
}

echo "streaming $captures captures, hub away for $outage s from capture $((captures / 4)); scratch: $scratch" >&2
outage_at=$((captures / 4))
down_since=""
back_at=""
backlog=""
backlog_drain=""
waiting_at_restart=""

hub_back() {
    case_start_hub "$mqtt_listen"
    back_at=$SECONDS
    backlog="$(case_outbox_len)"
    down_since=""
    echo "  hub and broker back with $backlog photos waiting" >&2
}

# The second restart comes once the device is delivering its backlog (or,
# if that is over first, after the stream).
restart_broker() {
    waiting_at_restart="$(case_outbox_len)"
    echo "  broker restarted with $waiting_at_restart photos waiting" >&2
    case_stop_hub TERM
    case_start_hub "$mqtt_listen"
}

# After the outage: notes when the backlog is gone, and restarts the broker
# while it drains.
watch_backlog() {
    [[ -n "$back_at" && -z "$backlog_drain" ]] || return 0
    local waiting
    waiting="$(case_outbox_len)"
    if ((waiting == 0)); then
        backlog_drain=$((SECONDS - back_at))
    elif [[ -z "$waiting_at_restart" ]] && ((waiting < backlog)); then
        restart_broker
    fi
}

started=$SECONDS
for n in $(seq 1 "$captures"); do
    capture_one
    if ((n == outage_at)); then
        echo "  capture $n: hub and broker killed" >&2
        case_stop_hub KILL
        down_since=$SECONDS
    fi
    if [[ -n "$down_since" ]] && ((SECONDS - down_since >= outage)); then
        echo "  capture $n: $((SECONDS - down_since)) s of outage" >&2
        hub_back
    fi
    watch_backlog
    sleep "$interval"
done
last_capture=$SECONDS
if [[ -n "$down_since" ]]; then
    sleep $((outage - (SECONDS - down_since) > 0 ? outage - (SECONDS - down_since) : 0))
    hub_back
fi
[[ -n "$back_at" ]] || case_die "the outage never happened (CAPTURES too small?)"

for _ in $(seq 1 2400); do
    watch_backlog
    [[ -n "$backlog_drain" ]] && break
    sleep 0.5
done
[[ -n "$waiting_at_restart" ]] || restart_broker
for _ in $(seq 1 1200); do
    waiting="$(case_outbox_len)"
    ((waiting == 0)) && break
    sleep 0.5
done
drained=$SECONDS

grep '"event":"captured"' "$scratch/events.jsonl" |
    sed 's/.*"photo_id":"\([0-9a-f-]*\)".*/\1/' | sort >"$scratch/announced.txt"
case_hub_sql 'SELECT id FROM photos;' | sort >"$scratch/stored.txt"
announced="$(wc -l <"$scratch/announced.txt")"
stored="$(wc -l <"$scratch/stored.txt")"
missing="$(comm -23 "$scratch/announced.txt" "$scratch/stored.txt" | wc -l)"
extra="$(comm -13 "$scratch/announced.txt" "$scratch/stored.txt" | wc -l)"
files="$(find "$scratch/hub/photos" -name '*.sealed' | wc -l)"
received="$(case_hub_sql "SELECT count(*) FROM audit_log WHERE kind = 'photo_received';")"
received_distinct="$(case_hub_sql "SELECT count(DISTINCT subject) FROM audit_log WHERE kind = 'photo_received';")"
again="$(grep -c 'photo already stored; acknowledging again' "$scratch/hub.log" || true)"

printf '%-34s %s\n' \
    "C30 delivery" "" \
    "captures (announced)" "$announced" \
    "stored at the hub" "$stored" \
    "announced but not stored" "$missing" \
    "stored but never announced" "$extra" \
    "sealed files" "$files" \
    "photo_received entries" "$received" \
    "duplicates (entries - photos)" "$((received - received_distinct))" \
    "resends the hub acknowledged again" "$again" \
    "waiting when the hub came back" "$backlog" \
    "waiting at the second restart" "$waiting_at_restart" \
    "outbox at the end" "$waiting" \
    "stream (s)" "$((last_capture - started))" \
    "backlog drained after outage (s)" "${backlog_drain:-never}" \
    "drained after the last capture (s)" "$((drained > last_capture ? drained - last_capture : 0))"

if ((missing + extra + waiting > 0)) || ((files != announced || received != announced || received_distinct != announced)); then
    echo "C30: a promise was broken; KEEP=1 keeps the logs" >&2
    exit 1
fi
echo "C30: every capture stored once, with one file and one audit entry"
