-- The log's metadata: streams, partitions, sealed segments, committed offsets.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.

CREATE TABLE streams (
    name TEXT PRIMARY KEY,
    stream_id BIGINT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE partitions (
    stream_id BIGINT NOT NULL,
    partition_id BIGINT NOT NULL,
    log_start_offset BIGINT NOT NULL,
    PRIMARY KEY (stream_id, partition_id)
);

CREATE TABLE segments (
    stream_id BIGINT NOT NULL,
    partition_id BIGINT NOT NULL,
    base_offset BIGINT NOT NULL,
    last_offset BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL,
    min_timestamp BIGINT NOT NULL,
    max_timestamp BIGINT NOT NULL,
    object_key TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (stream_id, partition_id, base_offset)
);

CREATE TABLE consumer_offsets (
    group_id TEXT NOT NULL,
    stream_name TEXT NOT NULL,
    partition_id BIGINT NOT NULL,
    committed_offset BIGINT NOT NULL,
    metadata TEXT,
    committed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (group_id, stream_name, partition_id)
);
