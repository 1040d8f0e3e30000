#!/usr/bin/env bash
# Writes the man page (troff, section 1) of one klinepipe program to stdout, made
# from the program's own --help text, so that the page lists exactly the options
# the binary accepts:
#
#   scripts/gen-man.sh bin/kline-producer > build/release/man/kline-producer.1
#
# The --help layout it reads (every program's help follows it):
#   "usage: ..." and the lines indented under it      → SYNOPSIS
#   other text before the first option                → DESCRIPTION
#   an unindented line ending in ':'                  → a subsection of OPTIONS
#   "  -x, --long ARG   text" (+ deeper-indented lines) → one option
#   a paragraph starting "Exit"                        → EXIT STATUS
#   [VAR...] / (VAR, ...) / VAR=... in an option's text → ENVIRONMENT
# Only POSIX awk and sed: the Docker build stage runs it too (`make install`).
# The date on the page: SOURCE_DATE_EPOCH, else the last commit, else today.
set -euo pipefail

prog_path=${1:?usage: gen-man.sh PROGRAM}
prog=$(basename "$prog_path")

# The one-line NAME of each page (the help texts start differently).
case $prog in
kline-producer) summary="Binance klines (WebSocket + REST gap backfill) into Kafka, gap-free" ;;
kline-inserter) summary="Kafka (or NDJSON) klines into PostgreSQL, exactly once" ;;
kline-aggregator) summary="roll 1-second klines up into 1-minute and coarser bars" ;;
kline-streamer) summary="live klines to browsers over WebSocket, the web page and history API" ;;
*) summary="a klinepipe program" ;;
esac

epoch=${SOURCE_DATE_EPOCH:-$(git -C "$(dirname "$0")" log -1 --format=%ct 2>/dev/null || date +%s)}
# A program whose options live in a common/opt.c table renders its own page.
if page=$(SOURCE_DATE_EPOCH=$epoch "$prog_path" --help=man 2>/dev/null) && [[ $page == '.\"'* ]]; then
	printf '%s\n' "$page"
	exit 0
fi

help=$("$prog_path" --help 2>&1) || { echo "gen-man.sh: $prog_path --help failed" >&2; exit 1; }
version=$("$prog_path" --version 2>&1 | head -1 | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^v?[0-9]+\.[0-9]/) { print $i; exit } }')
date=$(date -u -d "@$epoch" +%Y-%m-%d)

printf '%s\n' "$help" | awk -v prog="$prog" -v summary="$summary" -v version="${version:-unknown}" -v date="$date" '
function esc(s) {
	gsub(/\\/, "\\e", s)
	gsub(/-/, "\\-", s)
	gsub(/—/, "\\(em", s)
	gsub(/→/, "\\(->", s)
	return s
}
# a line of text in the page: troff must not take a leading . or '"'"' as a request
function line(s) {
	s = esc(s)
	if (s ~ /^[.'"'"']/) s = "\\&" s
	return s
}
function add(sec, s) { out[sec] = out[sec] s "\n" }
function indent(s) { match(s, /^ */); return RLENGTH }
function trim(s) { sub(/^ +/, "", s); sub(/ +$/, "", s); return s }
# "  -s, --symbols LIST     text": the option, then its argument if one space follows it
# (or two after a bare short option: "-X  KEY=VALUE"), then the text, however spaced.
# (no regex intervals: mawk, the awk of minimal Debian images, has none)
function is_option(s) { return s ~ /^ +-[-A-Za-z0-9]/ && indent(s) <= 8 }
function split_option(s,    t) {
	t = trim(s)
	opt_tag = ""
	if (match(t, /^-[A-Za-z0-9], /)) { opt_tag = substr(t, 1, RLENGTH); t = substr(t, RLENGTH + 1) }
	match(t, /^-[-A-Za-z0-9]*/)
	opt_tag = opt_tag substr(t, 1, RLENGTH); t = substr(t, RLENGTH + 1)
	if (t ~ /^ [^ ]/ || (opt_tag ~ /^-[A-Za-z0-9]$/ && t ~ /^  [A-Z]/)) {
		sub(/^ +/, "", t)
		match(t, /^[^ ]+/)
		opt_tag = opt_tag " " substr(t, 1, RLENGTH); t = substr(t, RLENGTH + 1)
	}
	opt_text = trim(t)
}
# environment variables an option names: [VAR], [VAR; ...], [VAR, ...], (VAR, ...), VAR=...
function find_env(tag, s,    v) {
	while (match(s, /[[(][A-Z][A-Z0-9_]+[],;=)]/) || match(s, /[[( ][A-Z][A-Z0-9]*_[A-Z0-9_]+[],;=) ]/)) {
		v = substr(s, RSTART + 1, RLENGTH - 2)
		if (!(v in env_of)) { env_of[v] = tag; env_order[++nenv] = v }
		s = substr(s, RSTART + RLENGTH - 1)
	}
}
function flush_option() {
	if (opt_tag == "") return
	add("options", ".TP")
	add("options", "@TAG@" esc(opt_tag))
	if (opt_text != "") add("options", line(opt_text))
	find_env(opt_tag, opt_text)
	opt_tag = ""
}
BEGIN { state = "desc"; nenv = 0 }
{
	raw = $0
	# usage line, and its continuation lines indented beneath it
	if (raw ~ /^usage: /) { flush_option(); s = raw; sub(/^usage: +/, "", s); add("synopsis", line(s)); state = "usage"; next }
	if (state == "usage" && raw ~ /^ +[^ ]/ && indent(raw) >= 8) { add("synopsis", line(trim(raw))); next }
	if (state == "usage") state = seen_opt ? "opts" : "desc"

	if (raw ~ /^ *$/) { flush_option(); if (state == "exit") state = "post"; para = 1; next }
	if (is_option(raw)) {
		flush_option(); split_option(raw); seen_opt = 1; state = "opts"; opt_indent = indent(raw); next
	}
	if (opt_tag != "" && indent(raw) > opt_indent) { opt_text = opt_text " " trim(raw); next }
	flush_option()
	if (raw ~ /^Exit/) { state = "exit"; add("exit", line(raw)); next }
	if (state == "exit") { add("exit", line(trim(raw))); next }
	if (raw ~ /^[^ ].*:$/) { add("options", ".SS " line(raw)); seen_opt = 1; state = "opts"; next }
	sec = seen_opt ? "notes" : "desc"
	if (para && out[sec] != "") add(sec, ".PP")
	para = 0
	add(sec, line(trim(raw)))
}
END {
	flush_option()
	up = toupper(prog)
	print ".\\\" Generated by scripts/gen-man.sh from `" prog " --help`; do not edit."
	print ".TH " esc(up) " 1 \"" date "\" \"klinepipe " esc(version) "\" \"klinepipe manual\""
	print ".nh"
	print ".ad l"
	print ".SH NAME"
	print esc(prog) " \\- " esc(summary)
	print ".SH SYNOPSIS"
	print ".nf"
	if (out["synopsis"] != "") printf "%s", out["synopsis"]
	else print "\\fB" esc(prog) "\\fR [\\fIOPTIONS\\fR]"
	print ".fi"
	print ".SH DESCRIPTION"
	printf "%s", out["desc"]
	print ".PP"
	print "Flags override environment variables, which override defaults. Logs go to standard"
	print "error, one line per event. SIGINT or SIGTERM: finish the work in hand and exit 0; a"
	print "second signal exits at once."
	print ".SH OPTIONS"
	printf "%s", out["options"]
	if (out["notes"] != "") { print ".SH NOTES"; printf "%s", out["notes"] }
	if (nenv) {
		print ".SH ENVIRONMENT"
		for (i = 1; i <= nenv; i++) {
			print ".TP"
			print "\\fB" esc(env_order[i]) "\\fR"
			print "as @OPT@" esc(env_of[env_order[i]])
		}
		print ".PP"
		print "Under systemd (the units installed by \\fBmake install\\fR) these are read from"
		print "/etc/klinepipe/*.env."
	}
	print ".SH EXIT STATUS"
	if (out["exit"] != "") printf "%s", out["exit"]
	else print "0 done, 1 runtime failure, 2 usage or configuration error."
	print ".SH SEE ALSO"
	n = split("kline-producer kline-inserter kline-aggregator kline-streamer", all, " ")
	s = ""
	for (i = 1; i <= n; i++) if (all[i] != prog) s = s (s == "" ? "" : ", ") "\\fB" esc(all[i]) "\\fR(1)"
	print s ", \\fBsystemd.exec\\fR(5)."
	print ".PP"
	print "README.md and docs/" substr(prog, 7) ".md in the klinepipe sources."
}' | sed -E \
	-e '/^@TAG@/{s/^@TAG@//; s/(^|[ ,|])(\\-\\-?[A-Za-z0-9][A-Za-z0-9\\-]*)/\1\\fB\2\\fR/g;}' \
	-e '/^as @OPT@/{s/^as @OPT@/as /; s/(^|[ ,|])(\\-\\-?[A-Za-z0-9][A-Za-z0-9\\-]*)/\1\\fB\2\\fR/g; s/$/./;}'
