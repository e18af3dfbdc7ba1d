-- Idempotent producers: the ids InitProducerId hands out (never reused,
-- across restarts), and each partition's producer state at the end of its
-- newest registered segment (JSON), the starting point of recovery.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.

CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

INSERT INTO counters (name, value) VALUES ('producer_id', -1);

CREATE TABLE producer_snapshots (
    stream_id BIGINT NOT NULL,
    partition_id BIGINT NOT NULL,
    end_offset BIGINT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (stream_id, partition_id)
);
