-- 010: the partitioned kline_1s. An old table with rows becomes its partition
-- kline_1s_legacy, FROM (MINVALUE) TO (cut). The 009 check proves that range, so the
-- attach scans nothing. An empty old table is dropped.
--
-- kline_1s_default catches a row for an hour that has no partition yet, e.g. a psql
-- insert, or a write that raced its partition's creation. kline_1s_ensure() moves such
-- rows into the right hourly partition when it creates it.
DO $$
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'kline_1s'::regclass) = 'p' THEN
        RETURN;
    END IF;
    ALTER TABLE kline_1s RENAME TO kline_1s_legacy;
    ALTER INDEX kline_1s_pkey RENAME TO kline_1s_legacy_pkey;
    CREATE TABLE kline_1s (LIKE kline_1s_legacy INCLUDING DEFAULTS) PARTITION BY RANGE (open_time);
    ALTER TABLE kline_1s ADD PRIMARY KEY (symbol, open_time);
    IF EXISTS (SELECT 1 FROM kline_1s_legacy_bound) THEN
        EXECUTE format('ALTER TABLE kline_1s ATTACH PARTITION kline_1s_legacy'
                       ' FOR VALUES FROM (MINVALUE) TO (%L)',
                       (SELECT cut FROM kline_1s_legacy_bound));
        ALTER TABLE kline_1s_legacy DROP CONSTRAINT kline_1s_legacy_cut;
    ELSE
        DROP TABLE kline_1s_legacy;
    END IF;
    CREATE TABLE kline_1s_default PARTITION OF kline_1s DEFAULT;
END $$;

-- Creates the hourly partitions for the hours (epoch seconds of the hour's start) that have
-- none yet, moving rows that wait in kline_1s_default into them. It returns how many it
-- created. The programs call it ahead of time (the inserter, for the hours it writes and
-- the next one), so users never have to.
--
-- Each new partition is built standalone and then ATTACHed. ATTACH takes SHARE UPDATE
-- EXCLUSIVE on the parent, so writes to other hours go on. CREATE ... PARTITION OF would
-- take ACCESS EXCLUSIVE.
CREATE FUNCTION kline_1s_ensure(hours bigint[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    h bigint;
    t0 timestamptz;
    name text;
    made integer := 0;
    cut timestamptz := (SELECT max(cut) FROM kline_1s_legacy_bound);
BEGIN
    FOREACH h IN ARRAY (SELECT array_agg(DISTINCT x) FROM unnest(hours) x) LOOP
        t0 := to_timestamp(h - h % 3600);
        name := 'kline_1s_p' || to_char(t0 AT TIME ZONE 'UTC', 'YYYYMMDDHH24');
        CONTINUE WHEN (cut IS NOT NULL AND t0 < cut) OR to_regclass(name) IS NOT NULL;
        PERFORM pg_advisory_xact_lock(461380648965);  -- PGX_LOCK_PARTITION: one creator at a time
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        EXECUTE format('CREATE TABLE %I (LIKE kline_1s INCLUDING DEFAULTS)', name);
        EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (symbol, open_time)', name);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (open_time >= %L AND open_time < %L)',
                       name, name || '_range', t0, t0 + interval '1 hour');
        EXECUTE format('WITH m AS (DELETE FROM kline_1s_default WHERE open_time >= %L AND open_time < %L'
                       ' RETURNING *) INSERT INTO %I SELECT * FROM m', t0, t0 + interval '1 hour', name);
        EXECUTE format('ALTER TABLE kline_1s ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       name, t0, t0 + interval '1 hour');
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', name, name || '_range');
        made := made + 1;
    END LOOP;
    RETURN made;
END $$;

-- The hourly partitions with the hour each starts at, oldest first (retention, tests).
CREATE VIEW kline_1s_partitions AS
    SELECT c.relname AS name,
           to_timestamp(substr(c.relname, 11), 'YYYYMMDDHH24')::timestamp AT TIME ZONE 'UTC'
               AS from_time
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'kline_1s'::regclass AND c.relname ~ '^kline_1s_p[0-9]{10}$'
    ORDER BY 2;
