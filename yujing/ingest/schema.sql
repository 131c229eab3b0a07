-- Ingest owns the registry (devices, sites) and what it could not accept (dead letters).
CREATE TABLE IF NOT EXISTS sites (
    enterprise  text NOT NULL,
    site        text NOT NULL,
    name        text NOT NULL DEFAULT '',
    state       text NOT NULL DEFAULT 'operating'
                CHECK (state IN ('operating', 'halted', 'closed')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT 'system',
    PRIMARY KEY (enterprise, site)
);

CREATE TABLE IF NOT EXISTS devices (
    enterprise  text NOT NULL,
    device      text NOT NULL,
    kind        text NOT NULL,
    site        text NOT NULL,
    tags        jsonb NOT NULL DEFAULT '{}',
    points      jsonb NOT NULL DEFAULT '{}',
    auto_registered boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT 'system',
    PRIMARY KEY (enterprise, device)
);

CREATE TABLE IF NOT EXISTS deadletters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL,
    topic       text NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL,
    enterprise  text,
    device      text,
    payload     bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS deadletters_reason_time ON deadletters (reason, received_at);
CREATE INDEX IF NOT EXISTS deadletters_time ON deadletters (received_at);

CREATE TABLE IF NOT EXISTS events (
    ts          timestamptz NOT NULL,
    enterprise  text NOT NULL,
    device      text NOT NULL,
    site        text NOT NULL,
    type        text NOT NULL,
    count       integer NOT NULL,
    seq         bigint,
    attrs       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_device_time ON events (enterprise, device, ts);

CREATE TABLE IF NOT EXISTS device_status (
    enterprise  text NOT NULL,
    device      text NOT NULL,
    ts          timestamptz NOT NULL,
    state       text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    PRIMARY KEY (enterprise, device)
);
