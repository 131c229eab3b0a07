-- Alerts own the alert table, its full history and the stored readings.
CREATE SEQUENCE IF NOT EXISTS alert_seq;

CREATE TABLE IF NOT EXISTS alerts (
    id              text PRIMARY KEY,
    key             text NOT NULL,
    enterprise      text NOT NULL,
    site            text,
    device          text,
    point           text,
    rule_id         text NOT NULL,
    rule_version    integer NOT NULL,
    kind            text NOT NULL,
    level           smallint NOT NULL,
    peak_level      smallint NOT NULL,
    state           text NOT NULL CHECK (state IN ('active', 'acknowledged', 'resolved', 'closed')),
    value           double precision,
    threshold       double precision,
    unit            text NOT NULL DEFAULT '',
    occurrences     integer NOT NULL DEFAULT 1,
    started_at      timestamptz NOT NULL,
    changed_at      timestamptz NOT NULL,
    resolved_at     timestamptz,
    acknowledged_at timestamptz,
    acknowledged_by text,
    closed_at       timestamptz,
    closed_by       text,
    disposal        text,
    message         text NOT NULL,
    seq             bigint NOT NULL,
    last_event_ts   bigint NOT NULL DEFAULT 0
);
-- One open alert per key until it is closed.
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open_key ON alerts (key) WHERE state <> 'closed';
CREATE INDEX IF NOT EXISTS alerts_enterprise_seq ON alerts (enterprise, seq DESC);
CREATE INDEX IF NOT EXISTS alerts_state_seq ON alerts (state, seq DESC);

CREATE TABLE IF NOT EXISTS alert_transitions (
    seq         bigint PRIMARY KEY,
    alert_id    text NOT NULL REFERENCES alerts (id),
    transition  text NOT NULL,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    source_id   text,
    from_state  text,
    to_state    text NOT NULL,
    from_level  smallint,
    to_level    smallint NOT NULL,
    note        text,
    alert       jsonb NOT NULL
);
-- The engine transition that caused a row: applying it twice finds it here.
CREATE UNIQUE INDEX IF NOT EXISTS alert_transitions_source ON alert_transitions (source_id)
    WHERE source_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS alert_transitions_alert ON alert_transitions (alert_id, seq);

-- Where the outbox relay got to in publishing transitions to Kafka and MQTT.
CREATE TABLE IF NOT EXISTS feed_cursor (
    name        text PRIMARY KEY,
    seq         bigint NOT NULL
);

-- Readings are stored by series id so that a row is fixed-width and COPY can be built
-- with numpy: (ts, series, value, quality).
CREATE TABLE IF NOT EXISTS reading_series (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enterprise  text NOT NULL,
    device      text NOT NULL,
    point       text NOT NULL,
    UNIQUE (enterprise, device, point)
);
