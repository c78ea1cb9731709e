#!/usr/bin/env bash
# fuzz.sh runs every fuzz target of the module (`make fuzz`), one after another, each
# for FUZZTIME (default 20s; a duration, or a count such as 500x). It finds the
# targets when it runs, so a new FuzzXxx in any package is fuzzed without being
# listed anywhere: every `func FuzzXxx(f *testing.F)` in a test file that `go list`
# reports for this platform. Arguments are package patterns, ./... when none.
#
# It stops at the first target that fails, naming it, with the status of go test.
# The input that failed is in the package's testdata/fuzz/<target>/, where `go test`
# replays it from then on.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
fuzztime=${FUZZTIME:-20s}
[ $# -gt 0 ] || set -- ./...

log() { printf 'fuzz.sh: %s\n' "$*" >&2; }

# go list prints "<import path> <folder> <test files...>" for each package; every
# target found becomes "<import path> <FuzzXxx>".
targets=()
while read -r pkg dir files; do
	[ -n "$files" ] || continue
	for f in $files; do
		while read -r name; do
			targets+=("$pkg $name")
		done < <(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\).*/\1/p' "$dir/$f")
	done
done < <(go list -e -f '{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' "$@")

if [ ${#targets[@]} -eq 0 ]; then
	log "no fuzz targets in $*"
	exit 1
fi
mapfile -t targets < <(printf '%s\n' "${targets[@]}" | LC_ALL=C sort)

log "${#targets[@]} targets, $fuzztime each"
for t in "${targets[@]}"; do
	pkg=${t% *} name=${t#* }
	log "$name in $pkg"
	status=0
	go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" "$pkg" || status=$?
	if [ "$status" -ne 0 ]; then
		log "FAILED: $name in $pkg (go test exit status $status)"
		exit "$status"
	fi
done
log "all ${#targets[@]} targets passed"
