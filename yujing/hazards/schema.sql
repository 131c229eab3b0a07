-- Hazards (隐患) and alarm follow-up (issue 9). A hazard's history is its rows in
-- feed_changes (record = 'hazard'), on the same seq as the alert transitions.
CREATE TABLE IF NOT EXISTS hazards (
    id                 text PRIMARY KEY,
    enterprise         text NOT NULL,
    source             text NOT NULL
                       CHECK (source IN ('alarm', 'inspection', 'self_check', 'public_report')),
    grade              text NOT NULL CHECK (grade IN ('general', 'major')),
    category           text NOT NULL,
    description        text NOT NULL,
    state              text NOT NULL CHECK (state IN ('reported', 'confirmed', 'rectifying',
                                                       'rectified', 'signed_off', 'dismissed')),
    reported_by        text NOT NULL,
    reported_at        timestamptz NOT NULL,
    changed_at         timestamptz NOT NULL,
    site               text,
    device             text,
    point              text,
    installation       text,
    division           text,  -- GB/T 2260 code of the enterprise when reported (the register)
    sector             text,  -- the device's sector tag, else the enterprise's main sector
    confirmed_by       text,
    confirmed_at       timestamptz,
    responsible_unit   text,
    responsible_person text,
    measures           text,
    deadline           timestamptz,
    rectifying_since   timestamptz,
    rectified_by       text,
    rectified_at       timestamptz,
    signed_off_by      text,
    signed_off_at      timestamptz,
    reason             text,
    sent_back          integer NOT NULL DEFAULT 0,
    listed_tier        smallint,  -- 1 county, 2 city, 3 province (挂牌督办)
    listed_by          text,
    listed_at          timestamptz,
    listed_deadline    timestamptz,
    escalated_tier     smallint NOT NULL DEFAULT 0,  -- 0 enterprise … 3 province
    overdue            boolean NOT NULL DEFAULT false,
    alert_ids          text[] NOT NULL DEFAULT '{}',
    seq                bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS hazards_enterprise_seq ON hazards (enterprise, seq DESC);
CREATE INDEX IF NOT EXISTS hazards_open ON hazards (state)
    WHERE state IN ('reported', 'confirmed', 'rectifying', 'rectified');
CREATE INDEX IF NOT EXISTS hazards_alerts ON hazards USING gin (alert_ids);
CREATE INDEX IF NOT EXISTS hazards_division ON hazards (division text_pattern_ops, reported_at);

-- Evidence files: the bytes in the database, so a file and its record commit together.
CREATE TABLE IF NOT EXISTS hazard_evidence (
    id           text PRIMARY KEY,
    hazard_id    text NOT NULL REFERENCES hazards (id),
    filename     text NOT NULL,
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png',
                                                       'application/pdf')),
    size         integer NOT NULL CHECK (size > 0),
    sha256       text NOT NULL,
    body         bytea NOT NULL,
    uploaded_by  text NOT NULL,
    uploaded_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS hazard_evidence_hazard ON hazard_evidence (hazard_id, uploaded_at);

-- Time limits per alert level and hazard grade (limits.py has the defaults).
CREATE TABLE IF NOT EXISTS time_limits (
    subject     text PRIMARY KEY,
    ack_s       double precision,
    feedback_s  double precision NOT NULL CHECK (feedback_s > 0),
    changed_by  text,
    changed_at  timestamptz
);
