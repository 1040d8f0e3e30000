#!/usr/bin/env bats
# The repository is complete on its own: a fresh `git clone` has every file the build,
# the tests and the docs refer to. Nothing may point at a folder beside or above the
# checkout (such a folder exists on the development machine, not in a user's clone).

bats_require_minimum_version 1.5.0

KP_ROOT=${KP_ROOT:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}

# The files git tracks, or (an unpacked tarball) every file but the build output;
# this file is left out, as it has to name what it looks for.
tree_files() {
	tree__files | grep -zvx 'tests/integration/tree.bats'
}
tree__files() {
	if git -C "$KP_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$KP_ROOT" ls-files -z --cached --others --exclude-standard
	else
		(cd "$KP_ROOT" && find . -path ./build -prune -o -path ./bin -prune -o -path ./tests/out -prune \
			-o -path ./web/node_modules -prune -o -path ./.git -prune -o -type f -printf '%P\0')
	fi
}

@test "no file in the tree refers to a path outside it (../shared, the dev box's absolute paths)" {
	# Spelled in pieces so that this file does not match itself.
	local up='\.\./'"shared" abs='/'"work"'/' data='shared/'"data"
	run bash -c "cd '$KP_ROOT' && { $(declare -f tree_files tree__files); KP_ROOT='$KP_ROOT'; tree_files; } |
		xargs -0 grep -InE -e '$up' -e '$abs' -e '$data' --"
	echo "$output"
	# grep exits 1 when nothing matched, which xargs reports as 123; 2 would be an error
	[ -z "$output" ]
	[ "$status" -eq 123 ] || [ "$status" -eq 1 ]
}

@test "the contract lives in the tree: docs/ARCHITECTURE.md, and every mention names that path" {
	[ -s "$KP_ROOT/docs/ARCHITECTURE.md" ]
	# outside docs/ a bare "ARCHITECTURE.md" would name a file that is not there
	run bash -c "cd '$KP_ROOT' && { $(declare -f tree_files tree__files); KP_ROOT='$KP_ROOT'; tree_files; } |
		grep -zv '^docs/' | xargs -0 grep -InE '(^|[^/])ARCHITECTURE\.md' --"
	echo "$output"
	[ -z "$output" ]
	[ "$status" -eq 123 ] || [ "$status" -eq 1 ]
}

@test "the real exchange samples the tests read are in tests/data/binance, with their sources" {
	local d=$KP_ROOT/tests/data/binance f
	[ -s "$d/SOURCES.md" ]
	for f in ws_kline_samples.jsonl rest_klines_BTCUSDT_1m_2021-10-22.json ADABTC-1m-2021-11-27.csv; do
		[ -s "$d/$f" ] || { echo "missing $d/$f"; false; }
		grep -qF "## $f" "$d/SOURCES.md" || { echo "$f not described in SOURCES.md"; false; }
	done
	[ "$(wc -l <"$d/ws_kline_samples.jsonl")" -eq 9 ]
	[ "$(wc -l <"$d/ADABTC-1m-2021-11-27.csv")" -eq 10 ]
}

# ---- one skeleton (issue 16): the same layout in every program folder ----
PROGRAM_DIRS=(producer inserter aggregator streamer)

@test "every program folder has the same skeleton: main.c, opts.c, loop.c, module.mk" {
	local d f
	for d in "${PROGRAM_DIRS[@]}"; do
		for f in main.c opts.c loop.c module.mk; do
			[ -f "$KP_ROOT/$d/$f" ] || { echo "$d/$f is missing"; false; }
		done
		# options live in opts.c: no other file of the program parses the command line
		run grep -ln 'getopt\|kp_opt_parse' "$KP_ROOT/$d"/*.c
		[ "$output" = "$KP_ROOT/$d/opts.c" ] || { echo "$d: option parsing in: $output"; false; }
	done
}

@test "no function in program code is longer than 60 lines (scripts/funcs.py)" {
	run "$KP_ROOT/scripts/funcs.py" --max 60 "${PROGRAM_DIRS[@]/#/$KP_ROOT/}"
	echo "$output"
	[ "$status" -eq 0 ]
	# the check can fail: a 61-line function
	d=$BATS_TEST_TMPDIR/long
	mkdir -p "$d"
	{ echo 'int f(void)'; echo '{'; for i in $(seq 59); do echo "    x($i);"; done; echo '}'; } >"$d/a.c"
	run "$KP_ROOT/scripts/funcs.py" --max 60 "$d"
	[ "$status" -eq 1 ]
	[[ $output == *" f "* ]]
}

@test "every program's --help, man page and README option table come from its option table" {
	local p
	for p in kline-producer kline-inserter kline-aggregator kline-streamer; do
		"$KP_BIN/$p" --help=man | head -1 | grep -q 'Generated from the option table' ||
			{ echo "$p --help=man is not rendered from a table"; false; }
		"$KP_BIN/$p" --help=markdown | grep -q '^| option | environment | default | meaning |$'
	done
	run "$KP_ROOT/scripts/gen-options-doc.sh" --check "$KP_BIN"
	echo "$output"
	[ "$status" -eq 0 ]
}
