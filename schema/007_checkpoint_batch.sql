-- 007: compact checkpoints. The seed design wrote one checkpoint row per symbol per
-- inserter batch: at 2,000 symbols in live mode that is one row (161 B) per kline, about
-- as much as the kline itself. The same information (first and last open_time per symbol
-- per batch, the Kafka offsets) is now one row per group of symbols that share it, the
-- symbols as a bitmap over a dense symbol dictionary: ~1 B per kline.
--
-- `checkpoint` stays, as a view with the old per-symbol shape, so every reader (the
-- aggregator, tests, users' queries) is unchanged. Inserting into the view or deleting
-- from it works too (INSTEAD OF triggers). Rows written before this migration stay in
-- checkpoint_legacy and are read through the same view until retention drops them.

-- Dense ids (0, 1, 2, ...) so a batch's symbols are a short bitmap. Ids are given out
-- under PGX_LOCK_CHECKPOINT (the inserters' commit-order lock), so no two writers race.
CREATE TABLE IF NOT EXISTS kline_symbol (
    id     integer PRIMARY KEY,
    symbol text    NOT NULL UNIQUE
);

ALTER TABLE checkpoint RENAME TO checkpoint_legacy;
ALTER INDEX checkpoint_symbol_last RENAME TO checkpoint_legacy_symbol_last;

-- One row per (inserter transaction, Kafka partition, first, last, rows per symbol).
-- Ids come from the old sequence, so they keep growing in commit order across the change.
CREATE TABLE checkpoint_batch (
    id              bigint      NOT NULL DEFAULT nextval('checkpoint_id_seq'),
    first_open_time timestamptz NOT NULL,
    last_open_time  timestamptz NOT NULL,
    row_count       integer     NOT NULL,   -- rows of each symbol in the group
    kafka_partition integer,
    first_offset    bigint,
    last_offset     bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    kafka_topic     text,
    symbols         bit varying NOT NULL    -- bit i set: kline_symbol.id i is in the group
);
ALTER SEQUENCE checkpoint_id_seq OWNED BY checkpoint_batch.id;
-- Not unique: an id is one commit, and a row updated through the view (below) becomes a
-- second row of its id. The inserter's rows each take a new id.
CREATE INDEX checkpoint_batch_id ON checkpoint_batch (id);

-- A bitmap with the given ids set (ids >= 0).
CREATE FUNCTION kp_symbol_bits(ids integer[]) RETURNS bit varying
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    b bit varying;
    i integer;
BEGIN
    b := repeat('0', coalesce((SELECT max(x) FROM unnest(ids) x), -1) + 1)::bit varying;
    FOREACH i IN ARRAY ids LOOP
        b := set_bit(b, i, 1);
    END LOOP;
    RETURN b;
END $$;

-- Ids for these symbols, registering the new ones (caller holds PGX_LOCK_CHECKPOINT or
-- runs alone: ids are max + 1).
CREATE FUNCTION kp_symbol_ids(names text[]) RETURNS TABLE (symbol text, id integer)
LANGUAGE sql AS $$
    INSERT INTO kline_symbol (id, symbol)
    SELECT (SELECT coalesce(max(k.id), -1) FROM kline_symbol k) + row_number() OVER (ORDER BY n), n
    FROM (SELECT DISTINCT n FROM unnest(names) n) x
    WHERE NOT EXISTS (SELECT 1 FROM kline_symbol k WHERE k.symbol = x.n)
    ON CONFLICT DO NOTHING;
    SELECT k.symbol, k.id FROM kline_symbol k WHERE k.symbol = ANY (names);
$$;

CREATE VIEW checkpoint AS
    SELECT id, symbol, first_open_time, last_open_time, row_count, kafka_topic,
           kafka_partition, first_offset, last_offset, created_at
    FROM checkpoint_legacy
    UNION ALL
    SELECT b.id, s.symbol, b.first_open_time, b.last_open_time, b.row_count, b.kafka_topic,
           b.kafka_partition, b.first_offset, b.last_offset, b.created_at
    FROM checkpoint_batch b
    CROSS JOIN LATERAL generate_series(0, length(b.symbols) - 1) i
    JOIN kline_symbol s ON s.id = i
    WHERE get_bit(b.symbols, i) = 1;

-- Every checkpoint id, legacy and compact, with its number of symbols (rows of the view):
-- "the next N checkpoint rows" without expanding a bitmap, in id order from both keys.
CREATE VIEW checkpoint_ids AS
    SELECT id, first_open_time, last_open_time, 1::bigint AS symbols FROM checkpoint_legacy
    UNION ALL
    SELECT id, first_open_time, last_open_time, bit_count(symbols) FROM checkpoint_batch;

-- Writes through the view (tools and tests write a few rows by hand): an inserted row
-- becomes a compact row of one symbol; a deleted one clears its symbol's bit (a group
-- with no bit left goes); an updated one leaves its group and becomes a row of its own,
-- under the same id.
CREATE FUNCTION kp_checkpoint_add(c checkpoint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    sid integer;
    out_id bigint;
BEGIN
    SELECT i.id INTO sid FROM kp_symbol_ids(ARRAY[c.symbol]) i;
    INSERT INTO checkpoint_batch (id, first_open_time, last_open_time, row_count, kafka_topic,
                                  kafka_partition, first_offset, last_offset, created_at, symbols)
    VALUES (coalesce(c.id, nextval('checkpoint_id_seq')),
            c.first_open_time, c.last_open_time, c.row_count, c.kafka_topic, c.kafka_partition,
            c.first_offset, c.last_offset, coalesce(c.created_at, now()), kp_symbol_bits(ARRAY[sid]))
    RETURNING id INTO out_id;
    RETURN out_id;
END $$;

CREATE FUNCTION kp_checkpoint_remove(c checkpoint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM checkpoint_legacy WHERE id = c.id AND symbol = c.symbol;
    UPDATE checkpoint_batch b SET symbols = set_bit(b.symbols, k.id, 0)
    FROM kline_symbol k WHERE b.id = c.id AND k.symbol = c.symbol
      AND k.id < length(b.symbols) AND get_bit(b.symbols, k.id) = 1;
    DELETE FROM checkpoint_batch WHERE id = c.id AND position(B'1' IN symbols) = 0;
END $$;

CREATE FUNCTION kp_checkpoint_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM kp_checkpoint_remove(OLD);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    NEW.id := kp_checkpoint_add(NEW);
    RETURN NEW;
END $$;
CREATE TRIGGER checkpoint_write INSTEAD OF INSERT OR UPDATE OR DELETE ON checkpoint
    FOR EACH ROW EXECUTE FUNCTION kp_checkpoint_write();
