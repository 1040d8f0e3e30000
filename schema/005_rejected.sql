-- 005: a rejected input is stored as a bounded prefix plus the size and SHA-256 of the
-- whole input. Junk can be large (a 1 MB Kafka message): storing it whole, hex-encoded on
-- the way in, cost memory and storage without bound. The inserter now keeps the first
-- --rejected-prefix bytes (default 64 KiB) in raw and identifies the input by
-- (origin, raw_sha256, raw_size), which keeps the redelivery dedupe exact.
-- NULL in both columns: raw is the whole input (rows of programs that store it whole).
ALTER TABLE rejected ADD COLUMN IF NOT EXISTS raw_size bigint;
ALTER TABLE rejected ADD COLUMN IF NOT EXISTS raw_sha256 bytea;
UPDATE rejected SET raw_size = length(raw), raw_sha256 = sha256(raw) WHERE raw_size IS NULL;
