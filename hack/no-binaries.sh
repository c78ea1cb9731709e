#!/usr/bin/env bash
# Fails when an executable build output sits in the tree outside bin/: an ELF
# file that git tracks, or one that is untracked, ignored or not. `go build`
# run in a package folder, or a test that builds into the working tree instead
# of a temporary folder, leaves one; a committed one costs every clone its size.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

found=0
while IFS= read -r -d '' f; do
	case "$f" in bin/*) continue ;; esac
	[ -f "$f" ] || continue
	magic=
	LC_ALL=C IFS= read -r -d '' -n 4 magic <"$f" || true
	if [ "$magic" = $'\x7fELF' ]; then
		echo "no-binaries: $f is a build output ($(stat -c %s "$f") bytes); build into bin/ or a temporary folder" >&2
		found=1
	fi
done < <(git ls-files -z --cached --others -- ':!:bin/') # without --exclude-standard: ignored files too
exit $found
