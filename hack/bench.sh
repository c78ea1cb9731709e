#!/usr/bin/env bash
# bench.sh runs the benchmarks of test/bench side by side in one run and prints
# their table (tools/benchreport), writing the plots into docs/bench. `make bench`
# runs it after `make testbed`, which installs the reference plugins, etcd and
# kube-apiserver. The benchmarks need root (network namespaces, links).
#
# Environment:
#   BENCH_OUT             the results file (JSON lines); default: a new file in a
#                         temporary folder, whose path is printed
#   BENCH_ROUNDS          rounds of the ADD+DEL benchmark (default 15)
#   BENCH_BURST_ROUNDS    rounds of the 100-pod burst (default 3)
#   BENCH_STARTUP_ROUNDS  rounds of the start-up benchmark (default 200)
#   BENCH_PATTERN         which benchmarks, a -bench pattern (default: all)
#   BENCH_SVG             where the plots go (default docs/bench)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [[ -z "${BENCH_OUT:-}" ]]; then
	BENCH_OUT=$(mktemp -d "${TMPDIR:-/tmp}/polynet-bench.XXXXXX")/bench.jsonl
fi
export BENCH_OUT
export BENCH_ROUNDS=${BENCH_ROUNDS:-15}
export BENCH_BURST_ROUNDS=${BENCH_BURST_ROUNDS:-3}
export BENCH_STARTUP_ROUNDS=${BENCH_STARTUP_ROUNDS:-200}
pattern=${BENCH_PATTERN:-.}
svg=${BENCH_SVG:-docs/bench}

# Results of an earlier run in the same file would be merged into this one's.
: >"$BENCH_OUT"
printf 'bench: results in %s (ADD+DEL rounds %s, burst rounds %s, start-up rounds %s)\n' \
	"$BENCH_OUT" "$BENCH_ROUNDS" "$BENCH_BURST_ROUNDS" "$BENCH_STARTUP_ROUNDS" >&2

go test -run '^$' -bench "$pattern" -benchtime 1x -timeout 60m ./test/bench/
go run ./tools/benchreport -in "$BENCH_OUT" -svg "$svg"
