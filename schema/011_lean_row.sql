-- 011: a leaner kline_1s row.
--   close_time is always open_time + 999 ms for a 1s kline. It is derived where it is
--   read, and the inserter rejects a 1s record that says otherwise.
--   ingested_at was the inserter's own clock, not market data, and the rollups never
--   read it: 8 B per row for nothing.
-- Dropping a column is a catalogue change: no rewrite, no long lock. Old rows in
-- kline_1s_legacy keep their bytes until retention drops them.
ALTER TABLE kline_1s DROP COLUMN close_time, DROP COLUMN ingested_at;

-- New hourly partitions list their columns in alignment order: 8-byte columns first,
-- then the variable-length ones, then the 1-byte ones. That leaves no padding between
-- columns. The parent keeps its old order: PostgreSQL maps columns by name when it
-- routes a row to a partition.
--
-- kline_1s_ensure(hours) creates the hourly partitions that have none yet, moving rows that
-- wait in kline_1s_default into them; it returns how many it created. Each is built
-- standalone and ATTACHed: ATTACH takes SHARE UPDATE EXCLUSIVE on the parent, so writes to
-- other hours go on (CREATE ... PARTITION OF would take ACCESS EXCLUSIVE).
CREATE OR REPLACE FUNCTION kline_1s_ensure(hours bigint[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    h bigint;
    t0 timestamptz;
    name text;
    made integer := 0;
    cut timestamptz := (SELECT max(cut) FROM kline_1s_legacy_bound);
    cols constant text := 'open_time, trades, first_trade_id, last_trade_id, event_time, symbol,'
        ' open, high, low, close, volume, quote_volume, taker_buy_volume, taker_buy_quote_volume,'
        ' closed, source';
BEGIN
    FOREACH h IN ARRAY (SELECT array_agg(DISTINCT x) FROM unnest(hours) x) LOOP
        t0 := to_timestamp(h - h % 3600);
        name := 'kline_1s_p' || to_char(t0 AT TIME ZONE 'UTC', 'YYYYMMDDHH24');
        CONTINUE WHEN (cut IS NOT NULL AND t0 < cut) OR to_regclass(name) IS NOT NULL;
        PERFORM pg_advisory_xact_lock(461380648965);  -- PGX_LOCK_PARTITION: one creator at a time
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        EXECUTE format('CREATE TABLE %I ('
            ' open_time timestamptz NOT NULL, trades bigint NOT NULL,'
            ' first_trade_id bigint NOT NULL DEFAULT -1, last_trade_id bigint NOT NULL DEFAULT -1,'
            ' event_time timestamptz, symbol text NOT NULL,'
            ' open numeric NOT NULL, high numeric NOT NULL, low numeric NOT NULL,'
            ' close numeric NOT NULL, volume numeric NOT NULL, quote_volume numeric NOT NULL,'
            ' taker_buy_volume numeric NOT NULL, taker_buy_quote_volume numeric NOT NULL,'
            ' closed boolean NOT NULL DEFAULT true, source text NOT NULL DEFAULT ''ws'','
            ' PRIMARY KEY (symbol, open_time),'
            ' CONSTRAINT %I CHECK (open_time >= %L AND open_time < %L))',
            name, name || '_range', t0, t0 + interval '1 hour');
        EXECUTE format('WITH m AS (DELETE FROM kline_1s_default WHERE open_time >= %L AND open_time < %L'
                       ' RETURNING %s) INSERT INTO %I (%s) SELECT %s FROM m',
                       t0, t0 + interval '1 hour', cols, name, cols, cols);
        EXECUTE format('ALTER TABLE kline_1s ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       name, t0, t0 + interval '1 hour');
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', name, name || '_range');
        made := made + 1;
    END LOOP;
    RETURN made;
END $$;

-- Partitions whose primary key kline-aggregator --compact-after has rebuilt (compact.c).
CREATE TABLE kline_1s_compacted (
    name         text        PRIMARY KEY,
    compacted_at timestamptz NOT NULL DEFAULT now()
);
