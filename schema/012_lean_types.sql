-- 012: kline_1s rows with types that fit the data, ~40 B per kline less than 011.
--   symbol          the integer id of kline_symbol (007) instead of the name, in the row
--                   and in the primary key;
--   trades          integer: a second has far fewer than 2^31 trades;
--   event_time      event_ms, an integer offset from open_time in ms (NULL: none);
--   closed, source  one smallint, flags: bit 0 closed, bits 1- the source (0 ws, 1 rest,
--                   2 replay);
--   last_trade_id   not stored: first_trade_id + trades - 1, or -1 when first_trade_id is
--                   -1. The inserter rejects a record that says otherwise, as it does for
--                   close_time (011).
-- A partition must have its parent's column types, so the lean rows have a new parent,
-- kline_1s_lean, and `kline_1s` becomes a view with the old shape: readers (the
-- aggregator, the streamer, tests, users' queries) are unchanged. Writes through the view
-- work (INSTEAD OF trigger); the inserter writes kline_1s_lean itself.
--
-- Upgrade in place, no row copied and brief locks only: the 011 table is renamed
-- kline_1s_wide and keeps every hour before a cut-off (the end of the newest hour it has
-- rows for); kline_1s_lean takes every hour from the cut-off on. The view reads both. A
-- late row for an hour before the cut-off is written to kline_1s_wide, so a key is never
-- in both. Retention drops the wide hours like the lean ones. A new database has no wide
-- table at all.
CREATE TABLE kline_1s_wide_bound (cut timestamptz NOT NULL);

-- The newest open_time of one (non-hourly) partition by a loose scan of its primary key:
-- one probe per symbol instead of reading the table.
CREATE FUNCTION kp_newest_open_time(t regclass) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    newest timestamptz;
BEGIN
    EXECUTE format('WITH RECURSIVE s(sym) AS (SELECT min(symbol) FROM %1$s'
                   '  UNION ALL SELECT (SELECT min(symbol) FROM %1$s WHERE symbol > s.sym) FROM s'
                   '  WHERE s.sym IS NOT NULL)'
                   ' SELECT max((SELECT max(open_time) FROM %1$s k WHERE k.symbol = s.sym)) FROM s',
                   t) INTO newest;
    RETURN newest;
END $$;

DO $$
DECLARE
    p record;
    cut timestamptz;
BEGIN
    DROP VIEW kline_1s_partitions;   -- made again below, over both parents
    ALTER TABLE kline_1s RENAME TO kline_1s_wide;
    ALTER INDEX kline_1s_pkey RENAME TO kline_1s_wide_pkey;
    ALTER TABLE kline_1s_default RENAME TO kline_1s_wide_default;
    ALTER INDEX kline_1s_default_pkey RENAME TO kline_1s_wide_default_pkey;
    -- hourly partitions, newest first: the first with a row ends the wide range; the
    -- empty ones after it (made ahead of time) go
    FOR p IN SELECT c.relname AS name,
                    to_timestamp(substr(c.relname, 11), 'YYYYMMDDHH24')::timestamp AT TIME ZONE 'UTC' AS t0
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'kline_1s_wide'::regclass AND c.relname ~ '^kline_1s_p[0-9]{10}$'
             ORDER BY 2 DESC LOOP
        EXECUTE format('SELECT CASE WHEN EXISTS (SELECT 1 FROM %I) THEN %L::timestamptz END',
                       p.name, p.t0 + interval '1 hour') INTO cut;
        EXIT WHEN cut IS NOT NULL;
        EXECUTE format('DROP TABLE %I', p.name);
    END LOOP;
    cut := greatest(cut, date_trunc('hour', kp_newest_open_time('kline_1s_wide_default')) + interval '1 hour');
    IF to_regclass('kline_1s_legacy') IS NOT NULL THEN
        cut := greatest(cut, date_trunc('hour', kp_newest_open_time('kline_1s_legacy')) + interval '1 hour');
    END IF;
    IF cut IS NULL THEN
        DROP TABLE kline_1s_wide;    -- no row at all: a new database
    ELSE
        INSERT INTO kline_1s_wide_bound VALUES (cut);
    END IF;
END $$;

-- The parent lists the columns in the order a reader thinks of them; the partitions
-- that hold the rows list them without padding: 8-byte columns, 4-byte, 2-byte, then the
-- numerics (short varlenas, byte-aligned). The orders must differ: PostgreSQL 15 cannot
-- give the inserter's RETURNING xmax (inserted or updated?) of an ON CONFLICT DO UPDATE
-- routed into a partition laid out exactly like its parent ("cannot retrieve a system
-- column in this context"); a partition in another order is converted, and can.
CREATE TABLE kline_1s_lean (
    symbol_id              integer     NOT NULL,
    open_time              timestamptz NOT NULL,
    open                   numeric     NOT NULL,
    high                   numeric     NOT NULL,
    low                    numeric     NOT NULL,
    close                  numeric     NOT NULL,
    volume                 numeric     NOT NULL,
    quote_volume           numeric     NOT NULL,
    trades                 integer     NOT NULL,
    taker_buy_volume       numeric     NOT NULL,
    taker_buy_quote_volume numeric     NOT NULL,
    first_trade_id         bigint      NOT NULL DEFAULT -1,
    flags                  smallint    NOT NULL DEFAULT 1,
    event_ms               integer,
    PRIMARY KEY (symbol_id, open_time)
) PARTITION BY RANGE (open_time);

-- A standalone table in the partitions' order (above), NAME, with its primary key.
CREATE FUNCTION kp_kline_1s_lean_table(name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %I ('
        ' open_time timestamptz NOT NULL, first_trade_id bigint NOT NULL DEFAULT -1,'
        ' symbol_id integer NOT NULL, trades integer NOT NULL, event_ms integer,'
        ' flags smallint NOT NULL DEFAULT 1,'
        ' open numeric NOT NULL, high numeric NOT NULL, low numeric NOT NULL,'
        ' close numeric NOT NULL, volume numeric NOT NULL, quote_volume numeric NOT NULL,'
        ' taker_buy_volume numeric NOT NULL, taker_buy_quote_volume numeric NOT NULL,'
        ' PRIMARY KEY (symbol_id, open_time))', name);
END $$;
SELECT kp_kline_1s_lean_table('kline_1s_default');
ALTER TABLE kline_1s_lean ATTACH PARTITION kline_1s_default DEFAULT;

-- flags from the closed and source columns (the view's trigger, the inserter's upsert);
-- the view has the inverse written out, where the planner sees it (a function call per
-- row costs a 1-hour answer of 1s bars ~9 ms).
CREATE FUNCTION kp_kline_flags(closed boolean, source text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT (CASE WHEN coalesce(closed, true) THEN 1 ELSE 0 END
           | 2 * (array_position(ARRAY['ws', 'rest', 'replay'], coalesce(source, 'ws')) - 1))::smallint $$;

DO $$
DECLARE
    lean constant text :=
        'SELECT y.symbol, l.open_time, l.open, l.high, l.low, l.close, l.volume, l.quote_volume,'
        '  l.trades::bigint AS trades, l.taker_buy_volume, l.taker_buy_quote_volume, l.first_trade_id,'
        '  CASE WHEN l.first_trade_id < 0 THEN -1 ELSE l.first_trade_id + l.trades - 1 END AS last_trade_id,'
        '  (l.flags & 1) = 1 AS closed, l.open_time + l.event_ms * interval ''1 millisecond'' AS event_time,'
        '  CASE l.flags >> 1 WHEN 0 THEN ''ws'' WHEN 1 THEN ''rest'' WHEN 2 THEN ''replay'' END AS source'
        ' FROM kline_1s_lean l JOIN kline_symbol y ON y.id = l.symbol_id';
BEGIN
    IF to_regclass('kline_1s_wide') IS NULL THEN
        EXECUTE 'CREATE VIEW kline_1s AS ' || lean;
    ELSE
        EXECUTE 'CREATE VIEW kline_1s AS ' || lean || ' UNION ALL'
                ' SELECT symbol, open_time, open, high, low, close, volume, quote_volume, trades,'
                '  taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, closed,'
                '  event_time, source FROM kline_1s_wide';
    END IF;
END $$;

-- Writes through the view (psql, tests, tools; the inserter writes kline_1s_lean itself).
-- A row the lean types cannot hold exactly is an error, not a silent change.
CREATE FUNCTION kp_kline_1s_add(k kline_1s) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    sid integer;
    off bigint;
BEGIN
    IF k.open_time < (SELECT max(cut) FROM kline_1s_wide_bound) THEN
        INSERT INTO kline_1s_wide VALUES (k.*);
        RETURN;
    END IF;
    IF k.last_trade_id IS DISTINCT FROM
       (CASE WHEN k.first_trade_id < 0 THEN -1 ELSE k.first_trade_id + k.trades - 1 END) THEN
        RAISE EXCEPTION 'kline_1s %: last_trade_id % is not first_trade_id + trades - 1 (or -1)',
            k.symbol, k.last_trade_id USING ERRCODE = 'check_violation';
    END IF;
    off := (extract(epoch FROM k.event_time - k.open_time) * 1000)::bigint;
    IF off NOT BETWEEN -2147483648 AND 2147483647 THEN
        RAISE EXCEPTION 'kline_1s %: event_time more than 24 days from open_time', k.symbol
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT id INTO sid FROM kline_symbol WHERE symbol = k.symbol;
    IF sid IS NULL THEN
        PERFORM pg_advisory_xact_lock(461380648962);  -- PGX_LOCK_CHECKPOINT: ids are max + 1
        SELECT i.id INTO sid FROM kp_symbol_ids(ARRAY[k.symbol]) i;
    END IF;
    INSERT INTO kline_1s_lean (open_time, first_trade_id, symbol_id, trades, event_ms, flags, open,
                               high, low, close, volume, quote_volume, taker_buy_volume,
                               taker_buy_quote_volume)
    VALUES (k.open_time, coalesce(k.first_trade_id, -1), sid, k.trades, off,
            kp_kline_flags(k.closed, k.source), k.open, k.high, k.low, k.close, k.volume,
            k.quote_volume, k.taker_buy_volume, k.taker_buy_quote_volume);
END $$;

CREATE FUNCTION kp_kline_1s_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM kline_1s_lean l USING kline_symbol y
        WHERE y.symbol = OLD.symbol AND l.symbol_id = y.id AND l.open_time = OLD.open_time;
        IF to_regclass('kline_1s_wide') IS NOT NULL THEN
            EXECUTE 'DELETE FROM kline_1s_wide WHERE symbol = $1 AND open_time = $2'
                USING OLD.symbol, OLD.open_time;
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    PERFORM kp_kline_1s_add(NEW);
    RETURN NEW;
END $$;
CREATE TRIGGER kline_1s_write INSTEAD OF INSERT OR UPDATE OR DELETE ON kline_1s
    FOR EACH ROW EXECUTE FUNCTION kp_kline_1s_write();

-- The hourly partitions of both parents with the hour each starts at, oldest first.
CREATE VIEW kline_1s_partitions AS
    SELECT c.relname AS name,
           to_timestamp(substr(c.relname, 11), 'YYYYMMDDHH24')::timestamp AT TIME ZONE 'UTC'
               AS from_time,
           i.inhparent::regclass::text AS parent
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent IN (SELECT oid FROM pg_class WHERE relname IN ('kline_1s_lean', 'kline_1s_wide'))
      AND c.relname ~ '^kline_1s_p[0-9]{10}$'
    ORDER BY 2;

-- kline_1s_ensure(hours): the lean hourly partitions that have none yet (hours before
-- the wide cut-off belong to kline_1s_wide), rows waiting in kline_1s_default moved in;
-- returns how many it created. As in 011: built standalone and ATTACHed (SHARE UPDATE
-- EXCLUSIVE on the parent, so writes to other hours go on).
CREATE OR REPLACE FUNCTION kline_1s_ensure(hours bigint[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    h bigint;
    t0 timestamptz;
    name text;
    made integer := 0;
    cut timestamptz := (SELECT max(cut) FROM kline_1s_wide_bound);
    cols constant text := 'open_time, first_trade_id, symbol_id, trades, event_ms, flags,'
        ' open, high, low, close, volume, quote_volume, taker_buy_volume, taker_buy_quote_volume';
BEGIN
    FOREACH h IN ARRAY (SELECT array_agg(DISTINCT x) FROM unnest(hours) x) LOOP
        t0 := to_timestamp(h - h % 3600);
        name := 'kline_1s_p' || to_char(t0 AT TIME ZONE 'UTC', 'YYYYMMDDHH24');
        CONTINUE WHEN (cut IS NOT NULL AND t0 < cut) OR to_regclass(name) IS NOT NULL;
        PERFORM pg_advisory_xact_lock(461380648965);  -- PGX_LOCK_PARTITION: one creator at a time
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        PERFORM kp_kline_1s_lean_table(name);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (open_time >= %L AND open_time < %L)',
                       name, name || '_range', t0, t0 + interval '1 hour');
        EXECUTE format('WITH m AS (DELETE FROM kline_1s_default WHERE open_time >= %L AND open_time < %L'
                       ' RETURNING %s) INSERT INTO %I (%s) SELECT %s FROM m',
                       t0, t0 + interval '1 hour', cols, name, cols, cols);
        EXECUTE format('ALTER TABLE kline_1s_lean ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       name, t0, t0 + interval '1 hour');
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', name, name || '_range');
        made := made + 1;
    END LOOP;
    RETURN made;
END $$;

-- kp_symbol_ids under the lock that makes max + 1 safe, for a caller outside a batch
-- transaction (the inserter registers a batch's new symbols before writing it).
CREATE FUNCTION kp_symbol_ids_locked(names text[]) RETURNS TABLE (symbol text, id integer)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(461380648962);  -- PGX_LOCK_CHECKPOINT
    RETURN QUERY SELECT * FROM kp_symbol_ids(names);
END $$;
