-- Synthetic 1s rows for kline-aggregator tests and bench/bench_aggregator.sh, made by the
-- server (fast): psql -v nsym=N -v secs=S -v t0=EPOCH_S -v cpsz=K -f agg_gen.sql
-- Symbols S00001..; every 7th second has no trades (its OHLC is the previous close);
-- one checkpoint per K seconds for all symbols, in time order, as the inserter writes them
-- (compact: schema/007). The hourly partitions are made first, as the inserter does.
SELECT kline_1s_ensure(ARRAY(SELECT generate_series(:t0::bigint, :t0::bigint + :secs - 1, 3600))
                       || (:t0::bigint + :secs - 1)) AS partitions_made;
SELECT count(*) AS symbols FROM kp_symbol_ids(ARRAY(SELECT 'S' || lpad(s::text, 5, '0')
                                                     FROM generate_series(1, :nsym) s));
-- Straight into kline_1s_lean (schema/012), as the inserter writes (the kline_1s view's
-- trigger would take a row at a time). last_trade_id is first + trades - 1, or -1.
INSERT INTO kline_1s_lean (symbol_id, open_time, open, high, low, close, volume, quote_volume,
  trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, flags, event_ms)
SELECT y.id, to_timestamp(e),
       CASE WHEN z THEN pc ELSE p END, CASE WHEN z THEN pc ELSE p + 0.5 END,
       CASE WHEN z THEN pc ELSE p - 0.5 END, CASE WHEN z THEN pc ELSE p + 0.125 END,
       CASE WHEN z THEN 0 ELSE 1.25 END, CASE WHEN z THEN 0 ELSE 125.5 END,
       CASE WHEN z THEN 0 ELSE e % 13 + 1 END, CASE WHEN z THEN 0 ELSE 0.5 END, CASE WHEN z THEN 0 ELSE 50.25 END,
       CASE WHEN z THEN -1 ELSE e * 20 END, 1, 1000
FROM generate_series(1, :nsym) s
     JOIN kline_symbol y ON y.symbol = 'S' || lpad(s::text, 5, '0'),
     generate_series(:t0::bigint, :t0::bigint + :secs - 1) e,
     LATERAL (SELECT (e % 7 = 0) AS z, 100 + (e % 1000) / 100.0 AS p, 100 + ((e - 1) % 1000) / 100.0 + 0.125 AS pc) v;
INSERT INTO checkpoint_batch (first_open_time, last_open_time, row_count, symbols)
SELECT to_timestamp(c), to_timestamp(least(c + :cpsz - 1, :t0::bigint + :secs - 1)),
       least(:cpsz, :t0::bigint + :secs - c), b.bits
FROM generate_series(:t0::bigint, :t0::bigint + :secs - 1, :cpsz) c,
     (SELECT kp_symbol_bits(array_agg(id)) AS bits FROM kline_symbol
      WHERE symbol IN (SELECT 'S' || lpad(s::text, 5, '0') FROM generate_series(1, :nsym) s)) b
ORDER BY c;
