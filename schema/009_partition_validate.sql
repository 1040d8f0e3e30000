-- 009: the scan that proves every row is below the cut-off (SHARE UPDATE EXCLUSIVE:
-- readers and writers go on). Once it passes, 010 attaches without scanning again.
-- docs/storage.md gives its time per 10 M rows.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'kline_1s_legacy_cut'
               AND NOT convalidated) THEN
        ALTER TABLE kline_1s VALIDATE CONSTRAINT kline_1s_legacy_cut;
    END IF;
END $$;
