-- The register owns enterprises (一企一档), chemical parks, standing risk grades, device
-- presence and the jurisdiction columns of tokens and alerts.
CREATE TABLE IF NOT EXISTS parks (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    division    text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT 'system'
);

CREATE TABLE IF NOT EXISTS enterprises (
    id                text PRIMARY KEY,
    name              text NOT NULL,
    uscc              text NOT NULL,
    division          text NOT NULL,
    park              text REFERENCES parks (id),
    sectors           text[] NOT NULL,
    supervision_class text NOT NULL CHECK (supervision_class IN ('A', 'B', 'C', 'D')),
    lon               double precision,
    lat               double precision,
    address           text NOT NULL DEFAULT '',
    contacts          jsonb NOT NULL DEFAULT '[]',
    installations     jsonb NOT NULL DEFAULT '[]',
    state             text NOT NULL DEFAULT 'operating'
                      CHECK (state IN ('operating', 'halted', 'closed')),
    state_since       date,
    state_document    text NOT NULL DEFAULT '',
    risk_grade        smallint,          -- standing grade (1 blue .. 4 red), set by a supervisor
    risk_grade_at     timestamptz,
    risk_grade_by     text,
    risk_grade_reason text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    updated_by        text NOT NULL DEFAULT 'system'
);
CREATE UNIQUE INDEX IF NOT EXISTS enterprises_uscc ON enterprises (uscc);
CREATE INDEX IF NOT EXISTS enterprises_division ON enterprises (division text_pattern_ops);
CREATE INDEX IF NOT EXISTS enterprises_sectors ON enterprises USING gin (sectors);

-- Every change of state and of standing risk grade, with who, when and why.
CREATE TABLE IF NOT EXISTS enterprise_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enterprise  text NOT NULL REFERENCES enterprises (id),
    field       text NOT NULL CHECK (field IN ('state', 'risk_grade')),
    old_value   text,
    new_value   text,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    note        text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS enterprise_history_ent ON enterprise_history (enterprise, id);

-- When each device last reported (wall clock of arrival) and the event time of its newest
-- reading or event: online and connection rates (在线率, 入网率) come from here.
CREATE TABLE IF NOT EXISTS device_presence (
    enterprise    text NOT NULL,
    device        text NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    last_ts       timestamptz NOT NULL,
    PRIMARY KEY (enterprise, device)
) WITH (fillfactor = 70);

-- A device's reporting interval: that of its slowest registered point (NULL: none given).
-- Kept as a stored column so that online figures over 100,000 devices read a number
-- instead of walking every device's points.
CREATE OR REPLACE FUNCTION yj_report_interval_s(points jsonb) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT max((v ->> 'interval_s')::double precision) FROM jsonb_each(points) AS x(k, v) $$;
ALTER TABLE devices ADD COLUMN IF NOT EXISTS report_interval_s double precision
    GENERATED ALWAYS AS (yj_report_interval_s(points)) STORED;

-- Online counts per enterprise, recounted every few seconds by each API process
-- (yujing/picture/presence.py): the overview joins them instead of counting 100,000 devices
-- per request. Derived data: safe to lose (the next count rebuilds it).
CREATE UNLOGGED TABLE IF NOT EXISTS enterprise_presence (
    enterprise  text PRIMARY KEY,
    devices     integer NOT NULL,
    connected   integer NOT NULL,
    online      integer NOT NULL,
    counted_at  timestamptz NOT NULL
);
