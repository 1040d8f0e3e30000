#!/usr/bin/env bash
# peers_centrifugo.sh — prints the path of the Centrifugo binary bench_peers.sh measures,
# building it first when it is not cached under build/: `go install` of the release tag
# through the Go module proxy (bench only; make test never runs this). About 5 minutes
# on 2 cores the first time, nothing afterwards.
#   KP_CENTRIFUGO_VERSION (default 6.9.1), KP_CENTRIFUGO_BIN (use this binary instead).
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
ver=${KP_CENTRIFUGO_VERSION:-6.9.1}
if [[ -n ${KP_CENTRIFUGO_BIN:-} ]]; then
	echo "$KP_CENTRIFUGO_BIN"
	exit 0
fi
dir=$root/build/peers/centrifugo-v$ver
bin=$dir/centrifugo
if [[ ! -x $bin ]]; then
	command -v go >/dev/null || { echo "peers_centrifugo: go is needed to build Centrifugo" >&2; exit 2; }
	echo "peers_centrifugo: building Centrifugo v$ver (go install, Go module proxy) into $dir" >&2
	mkdir -p "$dir"
	# the version a release build stamps in, so `centrifugo version` tells what was measured
	GOBIN=$dir GOFLAGS=-buildvcs=false go install \
		-ldflags "-X github.com/centrifugal/centrifugo/v6/internal/build.Version=$ver" \
		"github.com/centrifugal/centrifugo/v6@v$ver" >&2
fi
echo "$bin"
