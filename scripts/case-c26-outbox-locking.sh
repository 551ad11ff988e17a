#!/usr/bin/env bash
# Field case C26, the long run: the kiosk captures every 200 ms while its
# sync worker delivers to the hub and an idle `sqlite3` shell holds the
# outbox open in a read transaction (`BEGIN; SELECT count(*) FROM outbox;`,
# then nothing). Prints figures; `cargo test --test delivery_cases` holds
# the CI-size check.
#
#   scripts/case-c26-outbox-locking.sh                # 30 minutes
#   DURATION=120 scripts/case-c26-outbox-locking.sh   # 2 minutes
#
# DURATION   seconds of capturing (default 1800)
# INTERVAL   seconds between capture presses (default 0.2)
# KEEP=1     keep the scratch directory under /tmp (logs, databases)
# GUARDIAN_SHARED   the shared test photos (default ../shared)
#
# Everything runs on loopback in a scratch directory under /tmp: a hub set
# up with its command line, its embedded broker, and the kiosk with a
# camera replaying two shared photos and keys on stdin. A press is not
# sent while more than 10 are unanswered. It needs the sqlite3 shell and
# about 0.25 MB of disk per capture (some 2 GB for 30 minutes): the hub
# stores each photo, and while the shell holds its transaction the outbox's
# WAL cannot be recycled.
set -euo pipefail

# shellcheck source=scripts/case-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/case-common.sh"

duration="${DURATION:-1800}"
interval="${INTERVAL:-0.2}"
[[ "$duration" =~ ^[0-9]+$ ]] || case_die "DURATION must be whole seconds, not $duration"

case_require_sqlite3
case_build
case_scratch c26
case_school
case_start_hub 127.0.0.1:0
case_add_device
case_start_kiosk
case_unlock

# The idle shell: a read transaction opened once and left open.
mkfifo "$scratch/shell"
sqlite3 "$scratch/device/outbox.sqlite" <"$scratch/shell" >"$scratch/shell.out" 2>&1 &
shell_pid=$!
exec 4>"$scratch/shell"
printf 'BEGIN;\nSELECT count(*) FROM outbox;\n' >&4

echo "capturing every $interval s for $duration s; scratch: $scratch" >&2
answered() {
    grep -c '"event":"\(captured\|capture_refused\|capture_failed\)"' "$scratch/events.jsonl" || true
}
presses=0
max_outbox=0
next_sample=0
next_report=60
started=$SECONDS
while ((SECONDS - started < duration)); do
    if ((presses - $(answered) < 10)); then
        printf 'capture\n' >&3
        presses=$((presses + 1))
    fi
    if ((SECONDS >= next_sample)); then
        waiting="$(case_outbox_len)"
        ((waiting > max_outbox)) && max_outbox=$waiting
        next_sample=$((SECONDS + 5))
    fi
    if ((SECONDS - started >= next_report)); then
        echo "  $((SECONDS - started)) s: $(case_count captured) captured, $waiting waiting" >&2
        next_report=$((next_report + 60))
    fi
    sleep "$interval"
done
elapsed=$((SECONDS - started))

# Every press answered, then every photo delivered, with the shell still idle.
for _ in $(seq 1 600); do
    (($(answered) >= presses)) && break
    sleep 0.2
done
drain_started=$SECONDS
for _ in $(seq 1 600); do
    waiting="$(case_outbox_len)"
    ((waiting > max_outbox)) && max_outbox=$waiting
    ((waiting == 0)) && break
    sleep 0.5
done
drain=$((SECONDS - drain_started))
# The open read transaction keeps SQLite from recycling the WAL.
wal_mb="$(($(stat -c %s "$scratch/device/outbox.sqlite-wal" 2>/dev/null || echo 0) / 1000000))"
(($(answered) >= presses)) || echo "warning: $((presses - $(answered))) presses were never answered" >&2
# The shell's second count still sees its snapshot from the start.
printf 'SELECT count(*) FROM outbox;\nCOMMIT;\n.quit\n' >&4
exec 4>&-
wait "$shell_pid" || true
shell_pid=""

captured="$(case_count captured)"
grep '"event":"captured"' "$scratch/events.jsonl" |
    sed 's/.*"photo_id":"\([0-9a-f-]*\)".*/\1/' | sort >"$scratch/announced.txt"
case_hub_sql 'SELECT id FROM photos;' | sort >"$scratch/stored.txt"
lost="$(comm -23 "$scratch/announced.txt" "$scratch/stored.txt" | wc -l)"
received="$(case_hub_sql "SELECT count(*) FROM audit_log WHERE kind = 'photo_received';")"
received_distinct="$(case_hub_sql "SELECT count(DISTINCT subject) FROM audit_log WHERE kind = 'photo_received';")"
locked="$(grep -ciE 'database is locked|busy' "$scratch/device.log" || true)"
refusals="$(case_count capture_refused)"
failures="$(case_count capture_failed)"

printf '%-28s %s\n' \
    "C26 outbox locking" "" \
    "capture presses" "$presses" \
    "captures (announced)" "$captured" \
    "delivered (device events)" "$(case_count delivered)" \
    "stored at the hub" "$(wc -l <"$scratch/stored.txt")" \
    "announced but not stored" "$lost" \
    "photo_received entries" "$received (for $received_distinct photos)" \
    "refusals" "$refusals" \
    "capture failures" "$failures" \
    "locked/busy lines in log" "$locked" \
    "max outbox length" "$max_outbox" \
    "outbox at the end" "$waiting" \
    "outbox WAL, shell still open" "$wal_mb MB" \
    "idle shell's counts" "$(tr '\n' ' ' <"$scratch/shell.out")(its snapshot)" \
    "capturing (s)" "$elapsed" \
    "drain after last capture (s)" "$drain"

if ((lost + refusals + failures + locked + waiting > 0)) || [[ "$received" != "$captured" ]]; then
    echo "C26: a promise was broken; KEEP=1 keeps the logs" >&2
    exit 1
fi
echo "C26: nothing refused, lost, locked or received twice"
