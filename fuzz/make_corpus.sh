#!/bin/sh
# Regenerates the seed corpus fuzz/corpus/kline/ from the Binance samples in
# tests/data/binance (or $KP_TEST_DATA) plus hand-made edge cases.
# The seeds are checked in; rerun when samples change.
set -eu
cd "$(dirname "$0")/.."
data=${KP_TEST_DATA:-tests/data/binance}
[ -f "$data/ws_kline_samples.jsonl" ] || data=$data/binance
out=fuzz/corpus/kline
mkdir -p "$out"

n=0
while IFS= read -r line; do
    n=$((n + 1)); printf '%s' "$line" > "$out/ws-$n.json"
done < "$data/ws_kline_samples.jsonl"

n=0
while IFS= read -r line; do
    n=$((n + 1)); printf '%s' "$line" > "$out/csv-adabtc-$n.csv"
done < "$data/ADABTC-1m-2021-11-27.csv"

# One REST row per file, compacted (the response is pretty-printed, one value a line).
awk -v out="$out" '
    /^  \[/ { row = "["; n++; next }
    /^  \]/ { print row "]" > (out "/rest-" n ".json"); close(out "/rest-" n ".json"); row = ""; next }
    row != "" { gsub(/^ +/, ""); row = row $0 }
' "$data/rest_klines_BTCUSDT_1m_2021-10-22.json"

# Rows quoted in SOURCES.md (µs and ms timestamps).
printf '%s' '1735689600000000,93576.00000000,93610.93000000,93537.50000000,93610.93000000,8.21827000,1735689659999999,768978.75522470,2631,3.95157000,369757.32652890,0' > "$out/csv-us-1m.csv"
printf '%s' '1735689600000000,4.15070000,4.15870000,4.15060000,4.15540000,539.23000000,1735693199999999,2240.39860900,13,401.82000000,1669.98121300,0' > "$out/csv-us-1h.csv"
printf '%s\r\n' '1672531200000,16541.77000000,16543.20000000,16541.73000000,16542.37000000,2.03879000,1672531200999,33726.64613940,104,1.65187000,27326.28208680,0' > "$out/csv-ms-1s-crlf.csv"

# Hand-made edge cases.
printf '%s' '{"symbol":"BTCUSDT","interval":"1s","open_time":1789499996000,"close_time":1789499996999,"open":"76168.36000000","high":"76175.97000000","low":"76168.36000000","close":"76175.97000000","volume":"0.18974000","quote_volume":"14452.26191960","trades":114,"taker_buy_volume":"0.08558000","taker_buy_quote_volume":"6518.56313820","first_trade_id":6684854486,"last_trade_id":6684854599,"closed":true,"event_time":1789499997024,"source":"ws"}' > "$out/canonical.json"
printf '%s' '{"symbol":"x","interval":"1M","open_time":0,"close_time":0,"open":"0","high":"99999999999999999999.999999999999999999","low":"0","close":"00.1","volume":"0","quote_volume":"0","trades":0,"taker_buy_volume":"0","taker_buy_quote_volume":"0","closed":false,"source":"replay"}' > "$out/canonical-minimal.json"
printf '%s' '{"stream":"ethusdt@kline_1s@+08:00","data":{"e":"kline","E":1,"s":"ethusdt","k":{"t":0,"T":999,"s":"ethusdt","i":"1s","o":"1","c":"1","h":"1","l":"1","v":"0","n":0,"x":false,"q":"0","V":"0","Q":"0"}}}' > "$out/combined-lower-noids.json"
printf '%s' '{"e":"serverShutdown","E":1789499997024}' > "$out/server-shutdown.json"
printf '%s' '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1}}' > "$out/server-shutdown-combined.json"
printf '%s' '{"e":"kline","E":1,"k":{"t":0,"T":999,"s":"A","i":"1s","o":"NaN","c":"1e5","h":"-1","l":"Infinity","v":"","n":1.5,"x":"true","q":0,"V":null,"Q":[]}}' > "$out/ws-all-wrong.json"
printf '%s' '{"e":"kline","e":"kline","E":1}' > "$out/duplicate-key.json"
printf '%s' '[1634943780000,"60685.22000000","60729.84000000","60670.90000000","60719.27000000","21.63272000",1634943839999,"1313200.01340410",617,"12.28492000","745719.41022840","0",1]' > "$out/rest-13.json"
printf '%s' '1,1,1,1,1,1,2,1,3,1,1,0' > "$out/csv-tiny.csv"
printf '%s' '0.000028540|0.00002854' > "$out/dec-cmp.txt"
printf '%s' '99999999999999999999.999999999999999999|100000000000000000000' > "$out/dec-cmp-wide.txt"
printf '{"e":"kline","E":1,"s":"BTC\377"}' > "$out/bad-utf8.json"
printf '1672531200000,1\303\251,1,1,1,1,1672531200999,1,1,1,1,0' > "$out/csv-utf8.csv"
printf '{"e":"kline"\000}' > "$out/nul.json"
echo "seeds: $(ls "$out" | wc -l) files in $out"
