-- Checkpoints of streaming jobs: each a file of operator state in the
-- object store and a manifest (JSON) of what it covers: input offsets and
-- watermarks. A job restores its newest one; older ones are deleted.
-- `job` names one incarnation of a job (its stream's id), so a view
-- dropped and created again never restores the old one's state.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.

CREATE TABLE job_checkpoints (
    job TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    object_path TEXT NOT NULL,
    manifest TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (job, epoch)
);
