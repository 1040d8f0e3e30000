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

-- kline_1s_ensure(hours), which creates the hourly partitions, is defined in 011 with the
-- lean column order of every partition (nothing calls it in between).

-- The hourly partitions with the hour each starts at, oldest first (retention, tests).
CREATE VIEW kline_1s_partitions AS
    SELECT c.relname AS name,
           to_timestamp(substr(c.relname, 11), 'YYYYMMDDHH24')::timestamp AT TIME ZONE 'UTC'
               AS from_time
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'kline_1s'::regclass AND c.relname ~ '^kline_1s_p[0-9]{10}$'
    ORDER BY 2;
