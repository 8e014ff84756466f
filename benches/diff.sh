#!/usr/bin/env bash
# Issue 13's benchmark (docs/performance.md, "`relance diff`"): `relance
# diff` of two git revisions of the 1,000-file synthetic project that
# differ in one file, without data (the generated project has no
# relance.toml, hence no sample data). Two edits, each its own commit:
#   template  the subject of one template (rendered for every persona on
#             both sides)
#   journey   a `wait` of one scenario (a step changed)
# For reference, `relance check` of one side. Prints each run's wall time,
# user CPU and peak RSS, then the median wall time against the target
# (< 2 s). Release build; the machine's load average is printed too.
#   RUNS=5 OUT=/tmp/relance-bench-diff benches/diff.sh
#   RELANCE=path/to/relance benches/diff.sh      # another binary
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
OUT="${OUT:-/tmp/relance-bench-diff}"
NOW="2026-03-01T09:00:00Z"
cargo build --release --bin relance --example synth
R="${RELANCE:-$PWD/target/release/relance}"
rm -rf "$OUT"
mkdir -p "$OUT/repo"
target/release/examples/synth "$OUT/repo/proj" > /dev/null
g() { git -C "$OUT/repo" -c user.name=bench -c user.email=bench@example.org -c commit.gpgsign=false "$@"; }
g init -q
g add -A
g commit -qm base
# One template's subject, in the first file that declares one.
file=$(cd "$OUT/repo" && grep -rl --include='*.camp' 'subject *= *"' proj | sort | sed -n 1p)
sed -i '0,/subject *= *"/s//&[v2] /' "$OUT/repo/$file"
g commit -qam "template: one subject in $file"
# One wait of a scenario, in the first file that has `wait Nd`.
file2=$(cd "$OUT/repo" && grep -rlE --include='*.camp' '^ *wait [0-9]+d$' proj | sort | sed -n 1p)
sed -i -E '0,/^( *wait )([0-9]+)d$/s//\1\2d12h/' "$OUT/repo/$file2"
g commit -qam "journey: one wait in $file2"
echo "project: $(find "$OUT/repo/proj" -name '*.camp' | wc -l) .camp files; edits in $file and $file2" >&2
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

measure() { # name, then the command; prints one line per run and the median
  local name="$1"; shift
  local walls=()
  for i in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %U %M" -o "$OUT/$name.time" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" \
      || { echo "$name failed:" >&2; cat "$OUT/$name.err" >&2; exit 1; }
    local t
    t=$(tail -1 "$OUT/$name.time")
    walls+=("${t%% *}")
    printf '%-10s run %d: wall %s s, user %s s, peak RSS %s KB\n' "$name" "$i" $t >&2
  done
  local median
  median=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  local min
  min=$(printf '%s\n' "${walls[@]}" | sort -g | head -1)
  echo "$name $median $min"
}

cd "$OUT/repo/proj"
results=()
results+=("$(measure template "$R" diff HEAD~2 HEAD~1 --no-data --now "$NOW" --color never)")
grep -q '^1 template changed; no risks$' "$OUT/template.out" \
  || { echo "unexpected output of the template diff:" >&2; tail -3 "$OUT/template.out" >&2; exit 1; }
results+=("$(measure journey "$R" diff HEAD~1 HEAD --no-data --now "$NOW" --color never)")
grep -q '^1 scenario changed; no risks$' "$OUT/journey.out" \
  || { echo "unexpected output of the journey diff:" >&2; tail -3 "$OUT/journey.out" >&2; exit 1; }
results+=("$(measure check "$R" check . --now "$NOW" --color never)")
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo
printf '%-44s %10s %8s %8s\n' "relance diff, 1,000-file project, no data" "median" "min" "target"
for r in "${results[@]}"; do
  set -- $r
  case "$1" in
    check) printf '%-44s %8s s %6s s %8s\n' "relance check (one side, reference)" "$2" "$3" "-" ;;
    *) verdict=$(awk -v m="$2" 'BEGIN { print (m < 2.0) ? "PASS" : "FAIL" }')
       printf '%-44s %8s s %6s s %8s\n' "diff, one file changed ($1)" "$2" "$3" "< 2 s $verdict" ;;
  esac
done
