-- +goose Up
-- Every ingest batch updates each touched balance row once, in one
-- transaction. An update stays HOT (no new index entry) only while the
-- row's page has room for the new version, and pruning cannot reclaim
-- versions the same transaction made dead: at fillfactor 70 a batch that
-- touched most rows of a page found room for fewer than half of them, and
-- the rest became index inserts (measured: 45-70% HOT, 2.0 MB of WAL per
-- 10,000 rows). At 40 every row of a page can take its new version (100%
-- HOT, 0.76 MB of WAL). The table is small (one row per account and
-- bucket); pages written before this keep their fill until rewritten.
ALTER TABLE projection_balances SET (fillfactor = 40);

-- +goose Down
ALTER TABLE projection_balances SET (fillfactor = 70);
