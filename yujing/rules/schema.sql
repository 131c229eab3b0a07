-- Rules: the current rule set, every version of every rule, and the engines' snapshots.
CREATE TABLE IF NOT EXISTS rules (
    id          text PRIMARY KEY,
    version     integer NOT NULL,
    kind        text NOT NULL,
    body        jsonb NOT NULL,
    enabled     boolean NOT NULL,
    deleted     boolean NOT NULL DEFAULT false,
    changed_at  timestamptz NOT NULL,
    changed_by  text NOT NULL
);

CREATE TABLE IF NOT EXISTS rule_versions (
    id          text NOT NULL,
    version     integer NOT NULL,
    body        jsonb,              -- NULL for a deletion
    deleted     boolean NOT NULL DEFAULT false,
    changed_at  timestamptz NOT NULL,
    changed_by  text NOT NULL,
    PRIMARY KEY (id, version)
);

-- One row per (consumer group, input partition): the engine state of that partition's
-- series (a base snapshot; empty until first written) and the offset of the first record
-- it and its deltas do not include. `epoch` counts the claims on the row: an engine
-- writes only with the epoch of its own claim (rules/checkpoint.py).
CREATE TABLE IF NOT EXISTS engine_snapshots (
    grp         text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    state       bytea NOT NULL,
    taken_at    timestamptz NOT NULL,
    PRIMARY KEY (grp, topic, partition)
);
ALTER TABLE engine_snapshots ADD COLUMN IF NOT EXISTS epoch bigint NOT NULL DEFAULT 0;

-- The changes written after a row's base, applied in `seq` order when the row is loaded;
-- deleted when a new base is written.
CREATE TABLE IF NOT EXISTS engine_snapshot_deltas (
    grp         text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    seq         integer NOT NULL,
    state       bytea NOT NULL,
    PRIMARY KEY (grp, topic, partition, seq)
);
