-- Rolled-up bars (kline-aggregator) and its progress.
-- row_count = number of 1s rows the bar was built from; close_time = open_time + interval - 1 ms.

CREATE TABLE IF NOT EXISTS kline_1m  (LIKE kline_1s INCLUDING DEFAULTS, row_count integer NOT NULL, PRIMARY KEY (symbol, open_time));
CREATE TABLE IF NOT EXISTS kline_5m  (LIKE kline_1m INCLUDING DEFAULTS, PRIMARY KEY (symbol, open_time));
CREATE TABLE IF NOT EXISTS kline_15m (LIKE kline_1m INCLUDING DEFAULTS, PRIMARY KEY (symbol, open_time));
CREATE TABLE IF NOT EXISTS kline_1h  (LIKE kline_1m INCLUDING DEFAULTS, PRIMARY KEY (symbol, open_time));
CREATE TABLE IF NOT EXISTS kline_4h  (LIKE kline_1m INCLUDING DEFAULTS, PRIMARY KEY (symbol, open_time));
CREATE TABLE IF NOT EXISTS kline_1d  (LIKE kline_1m INCLUDING DEFAULTS, PRIMARY KEY (symbol, open_time));

CREATE TABLE IF NOT EXISTS aggregator_progress (
    name               text        PRIMARY KEY,   -- 'default' unless --name is given
    last_checkpoint_id bigint      NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
