"""DuckDB's side of benches/warehouse.sh (issue 14): loads the canonical
tables (exported from PostgreSQL as JSON lines, one file per table) into an
in-memory DuckDB, runs relance's DuckDB query as of AS_OF, and prints
`{"as_of", "segments": [{"name", "count"}]}` as `relance segments --format
json` does, in the order of ORDER (a file of target names, one a line).

usage: warehouse_duckdb.py DIR AS_OF — DIR holds ddl.sql, query.sql,
order.txt and contacts/events/list_members/tags.json.
"""
import json
import sys
import time

import duckdb

d, as_of = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute(open(f"{d}/ddl.sql").read())
t = time.time()
for name in ["contacts", "events", "list_members", "tags"]:
    con.execute(
        f"INSERT INTO {name} BY NAME SELECT * FROM read_json_auto('{d}/{name}.json')"
    )
print(f"  {time.time() - t:.2f} s: DuckDB load", file=sys.stderr)
q = open(f"{d}/query.sql").read()
t = time.time()
rows = con.execute(
    f"SELECT segment, count(*) FROM ({q}) q GROUP BY segment", [as_of]
).fetchall()
print(f"  {time.time() - t:.2f} s: DuckDB query", file=sys.stderr)
counts = dict(rows)
order = [l for l in open(f"{d}/order.txt").read().splitlines() if l]
stamp = as_of.replace("+00:00", "Z")
segs = [{"name": n, "count": counts.get(n, 0)} for n in order]
print(json.dumps({"as_of": stamp, "segments": segs}, sort_keys=True, separators=(",", ":")))
