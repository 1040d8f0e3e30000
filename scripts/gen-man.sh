#!/usr/bin/env bash
# Writes the man page (troff, section 1) of one klinepipe program to stdout:
#
#   scripts/gen-man.sh bin/kline-producer > build/release/man/kline-producer.1
#
# The program renders it from its option table (`PROG --help=man`, common/opt_help.c),
# so the page lists exactly the options, environment variables and defaults the binary
# has. The date on the page: SOURCE_DATE_EPOCH, else the last commit, else today.
set -euo pipefail
prog_path=${1:?usage: gen-man.sh PROGRAM}
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$(dirname "$0")" log -1 --format=%ct 2>/dev/null || date +%s)}
page=$(SOURCE_DATE_EPOCH=$epoch "$prog_path" --help=man) ||
	{ echo "gen-man.sh: $prog_path --help=man failed" >&2; exit 1; }
[[ $page == '.\"'* ]] || { echo "gen-man.sh: $prog_path --help=man is not a man page" >&2; exit 1; }
printf '%s\n' "$page"
