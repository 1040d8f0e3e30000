#!/usr/bin/env bash
# Finds sanitizer reports in the logs of a test run.
#
#   tests/sanscan.sh [--exclude NAME]... DIR_OR_FILE...
#
# Prints one line per report, "FILE:LINE: TEXT", and exits 1 if there was one, 0 if
# not (2 on a usage error). A report is an AddressSanitizer or LeakSanitizer error
# header ("==PID==ERROR: AddressSanitizer: ...") or an UndefinedBehaviorSanitizer
# diagnostic ("file.c:12:5: runtime error: ..."). Text files only, any depth; names
# given with --exclude (file names, e.g. run.log) are skipped.
# tests/run.sh calls it at the end of every run: a report in any program's log is a
# failed test even when the test that ran the program passed.
set -uo pipefail

excl=()
while [[ $# -gt 0 ]]; do
	case $1 in
	--exclude) excl+=(--exclude="${2:?--exclude needs a name}"); shift 2 ;;
	-h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
	--) shift; break ;;
	-*) echo "sanscan: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
(($#)) || { echo "sanscan: no directory or file given" >&2; exit 2; }

# -I: binary files are not logs; -s: a path that vanished is not an error here
out=$(grep -rIsnHE "${excl[@]}" \
	-e '==[0-9]+==ERROR: (AddressSanitizer|LeakSanitizer)' \
	-e '(^|[^A-Za-z])runtime error: ' -- "$@" | cut -c1-400)
[[ -z $out ]] && exit 0
printf '%s\n' "$out"
exit 1
