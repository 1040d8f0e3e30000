#!/usr/bin/env bash
# Seeds for fuzz_rest (fuzz/producer.mk): byte 0 selects the parser (0 klines body,
# 1 exchangeInfo body, 2 header line), the rest is a real or sim-shaped input.
set -euo pipefail
cd "$(dirname "$0")/.."
out=fuzz/corpus/rest
mkdir -p "$out"
seed() { { printf "\\x$1"; cat; } >"$out/$2"; }
src=tests/data/binance/rest_klines_BTCUSDT_1m_2021-10-22.json
head -c 4000 "$src" | sed 's/\],\[[^]]*$/]]/' | seed 00 klines_real
jq -c '.[0:3]' "$src" | seed 00 klines_real3
jq -c '.[0:1]' "$src" | seed 00 klines_one
printf '[]' | seed 00 klines_empty
printf '[[1,"1"],"x",{"a":1}]' | seed 00 klines_bad
printf '[[1700000000000,"0.1","0.2","0.05","0.15","10.5",1700000000999,"1.5",3,"4.0","0.6","0"]]' | seed 00 klines_sim
printf '{"timezone":"UTC","symbols":[{"symbol":"BTCUSDT","status":"TRADING","quoteAsset":"USDT"},{"symbol":"ETHBTC","status":"TRADING","quoteAsset":"BTC"},{"symbol":"OLDUSDT","status":"BREAK","quoteAsset":"USDT"}]}' | seed 01 info_mixed
printf '{"symbols":[]}' | seed 01 info_empty
printf '{"symbols":{}}' | seed 05 info_bad
printf 'Retry-After: 5\r\n' | seed 02 hdr_retry
printf 'X-MBX-USED-WEIGHT-1M: 1187\r\n' | seed 02 hdr_weight
printf 'retry-after: Wed, 21 Oct 2015 07:28:00 GMT\r\n' | seed 02 hdr_date
printf 'Retry-After: 99999999999999999999999\r\n' | seed 02 hdr_huge
