#!/usr/bin/env bash
# cover.sh runs the unit tests with coverage (`make cover`) and prints one line per
# package, the least covered first, then the module's total as `go tool cover -func`
# computes it. Packages without tests are listed at 0% ("no test files") so that the
# gaps show. The profile is $COVERPROFILE (default bin/cover.out), for
# `go tool cover -html`. Arguments are package patterns, the unit tests' when none.
#
# A failing package is listed as FAIL, its output shown above the table, and the
# script exits with go test's status.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
profile=${COVERPROFILE:-bin/cover.out}
[ $# -gt 0 ] || set -- ./internal/... ./cmd/... ./tools/...
mkdir -p "$(dirname "$profile")"
module=$(go list -m)

out=$(mktemp) rows=$(mktemp)
trap 'rm -f "$out" "$rows"' EXIT
status=0
go test -count=1 -coverprofile="$profile" "$@" >"$out" 2>&1 || status=$?

# Each package's summary line of go test becomes a row "<percent> <package> <note>"
# (-1 for a failed package); every other line (a failing test's output, a build
# error) is printed as it is.
awk -v module="$module/" -v rows="$rows" '
function row(pkg, pct, note) {
	sub("^" module, "", pkg)
	printf "%s\t%s\t%s\n", pct, pkg, note > rows
}
/^ok / {
	if (match($0, /coverage: [0-9.]+%/)) row($2, substr($0, RSTART + 10, RLENGTH - 11), "")
	else row($2, "0.0", "no statements")
	next
}
/^\t[^\t]+\t\tcoverage: / { split($0, f, "\t"); row(f[2], "0.0", "no test files"); next }
/^\?  / { row($2, "0.0", "no test files"); next }
/^FAIL\t/ { row($2, "-1", match($0, /\[.*\]/) ? substr($0, RSTART) : "tests failed"); next }
/^FAIL$/ { next }
{ print }
' "$out"
LC_ALL=C sort -t$'\t' -k1,1g -k2,2 "$rows" | awk -F'\t' '{
	line = sprintf("%7s  %-48s %s", ($1 == -1) ? "FAIL" : sprintf("%5.1f%%", $1), $2, $3)
	sub(/ +$/, "", line)
	print line
}'
if [ -s "$profile" ]; then
	total=$(go tool cover -func="$profile" | tail -n 1 | awk '{ print $NF }')
	printf '%7s  total (%s)\n' "$total" "$profile"
fi
exit "$status"
