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

-- Marks on an alert (issue 4): health = raised by a device-health rule; suppressed = inside a
-- maintenance window; chattering = reopened more than K times in T; unreliable = a hazard
-- alert on a point whose sensor is faulty/stuck/offline. active_since: when it last became
-- active (escalation counts from there).
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS health boolean NOT NULL DEFAULT false;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS suppressed boolean NOT NULL DEFAULT false;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS chattering boolean NOT NULL DEFAULT false;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS unreliable boolean NOT NULL DEFAULT false;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS active_since timestamptz;
CREATE INDEX IF NOT EXISTS alerts_point_open ON alerts (enterprise, device, point)
    WHERE state IN ('active', 'acknowledged');
-- notify: whether this change is pushed to people (MQTT, webhooks, escalation); the
-- machine feed yj.alerts and this table keep every change either way.
ALTER TABLE alert_transitions ADD COLUMN IF NOT EXISTS notify boolean NOT NULL DEFAULT true;
CREATE INDEX IF NOT EXISTS alert_transitions_at ON alert_transitions (at);

-- Maintenance windows: an enterprise, or a site, device or point in it, for a period.
CREATE TABLE IF NOT EXISTS maintenance_windows (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enterprise  text NOT NULL,
    site        text,
    device      text,
    point       text,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason      text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS maintenance_windows_ent ON maintenance_windows (enterprise, ends_at);

-- Webhook subscriptions and their deliveries; a delivery is retried with backoff and ends
-- `delivered` or `dead` (with the last error).
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id          text PRIMARY KEY,
    url         text NOT NULL,
    secret      text NOT NULL,
    enterprises text[],  -- NULL: every enterprise
    min_level   smallint NOT NULL DEFAULT 1,
    transitions boolean NOT NULL DEFAULT true,
    escalations boolean NOT NULL DEFAULT false,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    deleted_at  timestamptz
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES webhook_subscriptions (id),
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    seq             bigint NOT NULL,
    body            bytea NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    last_status     integer,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';

-- Escalation notices: notice n of an alert's active period, sent once.
CREATE TABLE IF NOT EXISTS alert_escalations (
    alert_id     text NOT NULL REFERENCES alerts (id),
    active_since timestamptz NOT NULL,
    n            integer NOT NULL,
    at           timestamptz NOT NULL,
    level        smallint NOT NULL,
    targets      integer NOT NULL,
    PRIMARY KEY (alert_id, active_since, n)
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

-- Where an alert belongs, fixed when it is raised (the register may change later; history
-- stays true): the enterprise's division (GB/T 2260), the sector and the major-hazard
-- installation of the device.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS division text;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS sector text;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS installation text;
CREATE INDEX IF NOT EXISTS alerts_division_started ON alerts (division text_pattern_ops, started_at);
