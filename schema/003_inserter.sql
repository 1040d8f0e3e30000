-- kline-inserter: a redelivered rejected input (same origin, same bytes) is stored once.
-- The inserter checks "NOT EXISTS (same origin and raw)" in every batch that has rejects;
-- this index keeps that check cheap however large the table grows.
CREATE INDEX IF NOT EXISTS rejected_origin ON rejected (origin);
