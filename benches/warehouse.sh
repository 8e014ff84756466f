#!/usr/bin/env bash
# Issue 14's benchmark (docs/warehouse.md, docs/performance.md): every
# segment and audience of campaigns/ as of one instant over a synthetic
# base, in process (`eval`) and on PostgreSQL (the generated SQL), side by
# side, and `relance load`'s throughput. The two answers must be equal.
#   CONTACTS=1000000 EVENTS=10000000 OUT=/tmp/relance-warehouse benches/warehouse.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${CONTACTS:-1000000}"
E="${EVENTS:-10000000}"
OUT="${OUT:-/tmp/relance-warehouse}"
AS_OF="2026-11-20T00:00:00Z"
cargo build --release --bin relance --example runbase
mkdir -p "$OUT"
if [ ! -f "$OUT/events.jsonl" ]; then
  target/release/examples/runbase --contacts "$N" --events "$E" --days 30 \
    --from 2026-11-01T00:00:00Z --seed 42 --out "$OUT"
fi
url="$(.ci/postgres "$OUT/pg")"
trap '.ci/postgres --stop "$OUT/pg"' EXIT
R=target/release/relance
t() { local s; s=$(date +%s.%N); "$@"; echo "  $(echo "$(date +%s.%N) - $s" | bc) s: ${*:1:3}" >&2; }
echo "load:" >&2
t $R load campaigns --database "$url" --contacts "$OUT/contacts.jsonl" --events "$OUT/events.jsonl" --replace
echo "segments in process:" >&2
t $R segments campaigns --contacts "$OUT/contacts.jsonl" --events "$OUT/events.jsonl" --as-of "$AS_OF" --format json > "$OUT/in_process.json"
echo "segments on PostgreSQL:" >&2
t $R segments campaigns --database "$url" --as-of "$AS_OF" --format json > "$OUT/postgres.json"
cmp "$OUT/in_process.json" "$OUT/postgres.json" && echo "same counts" >&2
