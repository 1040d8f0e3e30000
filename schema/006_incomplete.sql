-- kline-aggregator: incomplete bars (fewer 1s rows than the bar has seconds).
-- See docs/aggregator.md, "Incomplete bars".

-- A pending bucket that was found incomplete while its seconds may still arrive
-- (--incomplete-grace, measured on the symbol's watermark). A held bucket is not looked
-- at again until the grace has passed or a new checkpoint touches it (which clears held).
ALTER TABLE aggregator_pending ADD COLUMN IF NOT EXISTS held boolean NOT NULL DEFAULT false;
-- Held buckets are few: a new checkpoint probes this (usually empty) index per bucket
-- it touches, to un-hold them.
CREATE INDEX IF NOT EXISTS aggregator_pending_held ON aggregator_pending (name, symbol, interval_s, bucket)
    WHERE held;

-- Min first_open_time over the checkpoints this aggregator consumed, per symbol: where
-- the symbol's data begins. The bucket that contains it is judged from that second on
-- (a symbol that starts mid-minute, the first minute of a run). Symbols seen before this
-- migration had data before it: -infinity (every bucket judged whole).
ALTER TABLE aggregator_watermark ADD COLUMN IF NOT EXISTS first_open_time timestamptz;
UPDATE aggregator_watermark SET first_open_time = '-infinity' WHERE first_open_time IS NULL;

-- One row per bar that was written (or, with no rows at all, left out) incomplete after
-- the grace. resolved_at is set when the missing seconds arrive and the bar is rewritten
-- complete; a later incomplete rewrite clears it again. Unresolved rows:
--   select * from incomplete_bar where resolved_at is null order by open_time;
CREATE TABLE IF NOT EXISTS incomplete_bar (
    interval_s  integer     NOT NULL,            -- bar length: 60 = kline_1m, 300 = kline_5m, ...
    symbol      text        NOT NULL,
    open_time   timestamptz NOT NULL,
    row_count   integer     NOT NULL,            -- 1s rows the bar was built from (0: no bar)
    expected    integer     NOT NULL,            -- seconds it should have (see first_open_time)
    first_seen  timestamptz NOT NULL DEFAULT now(), -- first reported (wall clock)
    updated_at  timestamptz NOT NULL DEFAULT now(), -- last (re)judged incomplete or resolved
    resolved_at timestamptz,                     -- rewritten complete; NULL = still incomplete
    PRIMARY KEY (interval_s, symbol, open_time)
);
-- "What is still incomplete", oldest first, without reading the resolved history.
CREATE INDEX IF NOT EXISTS incomplete_bar_open ON incomplete_bar (open_time) WHERE resolved_at IS NULL;
