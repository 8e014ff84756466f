"""Runs relance's generated SQL on DuckDB for tests/sql_diff.rs.

usage: duckdb_run.py DIR — DIR holds setup.sql (DDL and INSERTs), query.sql
and as_of.txt; prints one `segment<TAB>contact` line per member.
"""
import sys
import duckdb

d = sys.argv[1]
con = duckdb.connect()
with open(f"{d}/setup.sql") as f:
    con.execute(f.read())
with open(f"{d}/query.sql") as f:
    query = f.read()
with open(f"{d}/as_of.txt") as f:
    as_of = f.read().strip()
for seg, contact in con.execute(query, [as_of]).fetchall():
    print(f"{seg}\t{contact}")
