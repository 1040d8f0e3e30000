-- kline-aggregator state beside aggregator_progress (002): per-symbol watermark and the
-- buckets that checkpoints touched but whose data has not reached the bucket's end yet.
-- Both are written in the same transaction as the bars and the progress row, so the
-- four always agree after a crash.

-- Max last_open_time over the checkpoints this aggregator (name) has consumed, per symbol.
-- A bucket [b, b + interval) is ready once watermark >= b + interval - 1 s.
CREATE TABLE IF NOT EXISTS aggregator_watermark (
    name       text        NOT NULL,
    symbol     text        NOT NULL,
    watermark  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, symbol)
);

-- Buckets (interval_s = bar length in seconds: 60 for kline_1m, 300 for kline_5m, ...)
-- touched by consumed checkpoints and not yet rolled up. The primary key also serves
-- "oldest pending bucket of a symbol" (retention guard) and "any 1m bucket still pending
-- inside this coarse bucket" (coarse readiness).
CREATE TABLE IF NOT EXISTS aggregator_pending (
    name       text        NOT NULL,
    interval_s integer     NOT NULL,
    symbol     text        NOT NULL,
    bucket     timestamptz NOT NULL,
    PRIMARY KEY (name, interval_s, symbol, bucket)
);
