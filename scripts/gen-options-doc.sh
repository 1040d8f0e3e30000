#!/usr/bin/env bash
# Rewrites the option tables in README.md from the programs' own option tables, so the
# docs cannot drift from what the binaries accept:
#
#   scripts/gen-options-doc.sh [BINDIR]      (default bin/)
#
# README.md marks each table with
#   <!-- options: kline-producer -->  ...  <!-- /options -->
# and everything between the two lines is replaced by `kline-producer --help=markdown`.
# --check: change nothing, exit 1 (with a diff) when README.md is not up to date.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
check=0
[[ ${1:-} == --check ]] && { check=1; shift; }
bindir=${1:-$root/bin}
readme=$root/README.md
out=$(mktemp)
trap 'rm -f "$out"' EXIT
skip=0
while IFS= read -r line; do
	if [[ $line =~ ^\<!--\ options:\ (kline-[a-z]+)\ --\>$ ]]; then
		printf '%s\n' "$line"
		"$bindir/${BASH_REMATCH[1]}" --help=markdown
		skip=1
	elif [[ $line == '<!-- /options -->' ]]; then
		printf '%s\n' "$line"
		skip=0
	elif ((!skip)); then
		printf '%s\n' "$line"
	fi
done <"$readme" >"$out"
if ((check)); then
	diff -u "$readme" "$out" && exit 0
	echo "README.md option tables differ from --help=markdown: run scripts/gen-options-doc.sh" >&2
	exit 1
fi
cp "$out" "$readme"
