-- 008-010: kline_1s becomes a table partitioned by open_time, one partition per UTC hour
-- (kline_1s_pYYYYMMDDHH), so retention drops whole partitions instead of deleting rows.
-- Native declarative partitioning: the official postgres:15 image and Debian 12 both have
-- it, with nothing to install, and partition pruning covers every query the programs run.
--
-- A database made by an earlier release is converted in place. Its table becomes the
-- partition kline_1s_legacy, for every time before a cut-off; no row is copied. Only
-- brief exclusive locks are taken. The one long step is the scan that proves the
-- cut-off, and it runs in 009 under a lock that lets reads and writes go on.
--
-- 008 picks the cut-off: the hour after the newest row, and at least a day ahead of
-- now. Writers still running the old release keep writing below it. The NOT VALID check
-- costs no scan.
CREATE TABLE IF NOT EXISTS kline_1s_legacy_bound (cut timestamptz NOT NULL);

DO $$
DECLARE
    cut timestamptz;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = 'kline_1s'::regclass) = 'p' THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM kline_1s) THEN
        RETURN;                      -- a new database: 010 makes the table from scratch
    END IF;
    cut := date_trunc('hour', greatest(now() + interval '1 day',
                                       (SELECT max(open_time) FROM kline_1s) + interval '1 hour'));
    INSERT INTO kline_1s_legacy_bound VALUES (cut);
    EXECUTE format('ALTER TABLE kline_1s ADD CONSTRAINT kline_1s_legacy_cut'
                   ' CHECK (open_time < %L) NOT VALID', cut);
END $$;
