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
-- series and the offset of the first record it does not include.
CREATE TABLE IF NOT EXISTS engine_snapshots (
    grp         text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    state       bytea NOT NULL,
    taken_at    timestamptz NOT NULL,
    PRIMARY KEY (grp, topic, partition)
);
