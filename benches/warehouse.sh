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

# DuckDB (PyPI's `duckdb`, as the tests use it: PYTHON, default
# RELANCE_TEST_PYTHON or python3): the canonical tables exported from
# PostgreSQL as JSON lines, then the DuckDB query; same counts expected.
PY="${PYTHON:-${RELANCE_TEST_PYTHON:-python3}}"
if "$PY" -c "import duckdb" 2> /dev/null; then
  D="$OUT/duckdb"
  mkdir -p "$D"
  for t in contacts events list_members tags; do
    psql -q "$url" -c "\\copy (SELECT row_to_json(x) FROM $t x) TO '$D/$t.json'"
  done
  $R sql campaigns --schema --dialect duckdb > "$D/ddl.sql"
  $R sql campaigns --dialect duckdb > "$D/query.sql"
  "$PY" -c "import json; [print(s['name']) for s in json.load(open('$OUT/in_process.json'))['segments']]" > "$D/order.txt"
  echo "segments on DuckDB:" >&2
  t "$PY" benches/warehouse_duckdb.py "$D" "$AS_OF" > "$OUT/duckdb.json"
  cmp "$OUT/in_process.json" "$OUT/duckdb.json" && echo "same counts (DuckDB)" >&2
else
  echo "DuckDB skipped: $PY has no duckdb module (set PYTHON)" >&2
fi

# Peak memory of `segments --database` (bounded: counts by GROUP BY,
# members streamed to the file).
T() { /usr/bin/time -f "  %e s, peak RSS %M KB: $1" "${@:2}"; }
echo "segments on PostgreSQL, peak memory:" >&2
T "counts" $R segments campaigns --database "$url" --as-of "$AS_OF" --format json > /dev/null
T "--members" $R segments campaigns --database "$url" --as-of "$AS_OF" --format json --members "$OUT/members.jsonl" > /dev/null

# Incremental `--write`: the events after AS_OF are held back, a first
# snapshot as of AS_OF (full), then one more day of events and an
# incremental snapshot, one more day and a `--full` one, one more day and
# an incremental one. The incremental and full snapshots must agree
# (tests/sql_diff.rs checks it; here the times are what is measured).
day() { date -u -d "$AS_OF + $1 day" +%Y-%m-%dT%H:%M:%SZ; }
psql -q "$url" -c "DROP TABLE IF EXISTS later, segment_members, segment_changes, segment_snapshots, segment_fingerprints" \
  -c "CREATE TABLE later AS SELECT * FROM events WHERE at > '$AS_OF'" \
  -c "DELETE FROM events WHERE at > '$AS_OF'" -c "VACUUM ANALYZE events"
echo "segments --write:" >&2
T "first snapshot (full)" $R segments campaigns --database "$url" --as-of "$AS_OF" --write > /dev/null
for k in 1 2 3; do
  psql -q "$url" -c "INSERT INTO events SELECT * FROM later WHERE at > '$(day $((k - 1)))' AND at <= '$(day $k)'"
  if [ "$k" = 2 ]; then full=--full; else full=; fi
  T "one more day, ${full:-incremental}" $R segments campaigns --database "$url" --as-of "$(day $k)" --write $full > /dev/null
done
psql -q "$url" -c "INSERT INTO events SELECT * FROM later WHERE at > '$(day 3)'" -c "DROP TABLE later"
