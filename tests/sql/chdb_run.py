"""Runs relance's generated ClickHouse SQL on chdb (PyPI's embedded
ClickHouse) for tests/sql_diff.rs.

usage: chdb_run.py DIR — DIR holds setup.sql (DDL and INSERTs, statements
separated by `;` at line ends), query.sql and as_of.txt; prints one
`segment<TAB>contact` line per member.
"""
import sys
from chdb import session

d = sys.argv[1]
s = session.Session()
s.query("CREATE DATABASE IF NOT EXISTS t ENGINE = Memory")
s.query("USE t")
with open(f"{d}/setup.sql") as f:
    for stmt in f.read().split(";\n"):
        if stmt.strip():
            s.query(stmt)
with open(f"{d}/query.sql") as f:
    query = f.read()
with open(f"{d}/as_of.txt") as f:
    as_of = f.read().strip()
query = query.replace("{as_of:String}", "'" + as_of + "'")
out = s.query(query, "TabSeparated")
sys.stdout.write(out.bytes().decode() if hasattr(out, "bytes") else str(out))
