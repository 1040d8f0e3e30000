-- klinepipe schema v1: 1s klines, inserter checkpoints, rejected inputs.
-- Applied by pgx_migrate() under an advisory lock; each file runs once, in order.

CREATE TABLE IF NOT EXISTS kline_1s (
    symbol                 text        NOT NULL,
    open_time              timestamptz NOT NULL,
    close_time             timestamptz NOT NULL,
    open                   numeric     NOT NULL,
    high                   numeric     NOT NULL,
    low                    numeric     NOT NULL,
    close                  numeric     NOT NULL,
    volume                 numeric     NOT NULL,
    quote_volume           numeric     NOT NULL,
    trades                 bigint      NOT NULL,
    taker_buy_volume       numeric     NOT NULL,
    taker_buy_quote_volume numeric     NOT NULL,
    first_trade_id         bigint      NOT NULL DEFAULT -1,
    last_trade_id          bigint      NOT NULL DEFAULT -1,
    closed                 boolean     NOT NULL DEFAULT true,
    event_time             timestamptz,
    source                 text        NOT NULL DEFAULT 'ws',
    ingested_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, open_time)
);

-- One row per symbol per inserter batch, written in the batch's transaction.
-- Ids are taken under PGX_LOCK_CHECKPOINT (held to commit), so id order = commit order
-- and a reader that remembers "last id consumed" never skips a late-committing batch.
CREATE TABLE IF NOT EXISTS checkpoint (
    id              bigserial   PRIMARY KEY,
    symbol          text        NOT NULL,
    first_open_time timestamptz NOT NULL,
    last_open_time  timestamptz NOT NULL,
    row_count       integer     NOT NULL,
    kafka_topic     text,
    kafka_partition integer,
    first_offset    bigint,
    last_offset     bigint,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS checkpoint_symbol_last ON checkpoint (symbol, last_open_time);

CREATE TABLE IF NOT EXISTS rejected (
    id          bigserial   PRIMARY KEY,
    raw         bytea       NOT NULL,          -- the input verbatim (may be invalid UTF-8)
    reason      text        NOT NULL,
    origin      text        NOT NULL,          -- e.g. kafka:klines/3@1234, stdin:17, ws:conn0
    program     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
