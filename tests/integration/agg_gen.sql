-- Synthetic 1s rows for kline-aggregator tests and bench/bench_aggregator.sh, made by the
-- server (fast): psql -v nsym=N -v secs=S -v t0=EPOCH_S -v cpsz=K -f agg_gen.sql
-- Symbols S00001..; every 7th second has no trades (its OHLC is the previous close);
-- one checkpoint row per symbol per K seconds, in time order, as the inserter writes them.
INSERT INTO kline_1s (symbol, open_time, close_time, open, high, low, close, volume, quote_volume,
  trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, event_time, source)
SELECT 'S' || lpad(s::text, 5, '0'), to_timestamp(e), to_timestamp(e) + interval '999 ms',
       CASE WHEN z THEN pc ELSE p END, CASE WHEN z THEN pc ELSE p + 0.5 END,
       CASE WHEN z THEN pc ELSE p - 0.5 END, CASE WHEN z THEN pc ELSE p + 0.125 END,
       CASE WHEN z THEN 0 ELSE 1.25 END, CASE WHEN z THEN 0 ELSE 125.5 END,
       CASE WHEN z THEN 0 ELSE e % 13 + 1 END, CASE WHEN z THEN 0 ELSE 0.5 END, CASE WHEN z THEN 0 ELSE 50.25 END,
       CASE WHEN z THEN -1 ELSE e * 20 END, CASE WHEN z THEN -1 ELSE e * 20 + e % 13 END,
       to_timestamp(e + 1), 'ws'
FROM generate_series(1, :nsym) s, generate_series(:t0::bigint, :t0::bigint + :secs - 1) e,
     LATERAL (SELECT (e % 7 = 0) AS z, 100 + (e % 1000) / 100.0 AS p, 100 + ((e - 1) % 1000) / 100.0 + 0.125 AS pc) v;
INSERT INTO checkpoint (symbol, first_open_time, last_open_time, row_count)
SELECT 'S' || lpad(s::text, 5, '0'), to_timestamp(c), to_timestamp(least(c + :cpsz - 1, :t0::bigint + :secs - 1)),
       least(:cpsz, :t0::bigint + :secs - c)
FROM generate_series(:t0::bigint, :t0::bigint + :secs - 1, :cpsz) c, generate_series(1, :nsym) s
ORDER BY c, s;
