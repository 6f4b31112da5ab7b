-- The older results tier becomes one row per series and hour ("chunk"), its results in
-- time order in one blob (src/chunk.rs), as PostgreSQL's has been since its 0007. The
-- hourly compaction then writes one row per series instead of sixty, and a 30-day read of
-- a series is ~720 rows instead of 43,200 (src/sqlite/chunks.rs).
--
-- A rowid table with its key in an index: a chunk (~1.5 KB for an hour of one-minute
-- results) would spill into overflow pages in a WITHOUT ROWID tree. Rows are added in
-- hour order, so both trees append.
-- `n` is the number of results the chunk holds (counts without decoding it). A chunk keeps
-- the id of a check deleted since; readers drop ids of checks that no longer exist.
CREATE TABLE result_chunks (
    hour INTEGER NOT NULL,
    host_id INTEGER NOT NULL,
    plugin_pk INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX result_chunks_key ON result_chunks (hour, host_id, plugin_pk);

-- The rows of `results` are then encoded into chunks by the binary (SQL cannot write the
-- encoding) and `results` is dropped: `sqlite::after_migration`.
