-- Alerting: noise-control settings per alert, the durable outbox of notifications with
-- every delivery attempt, maintenance windows and acknowledgements.

-- Settings beyond the module's options (re-notification, flapping, dependency hold-back),
-- as JSON beside the alert so the alert's own columns stay as they are.
CREATE TABLE alert_settings (
    alert_id INTEGER PRIMARY KEY REFERENCES alerts(id) ON DELETE CASCADE,
    settings TEXT NOT NULL
);

-- No foreign key to alerts: the history of what was sent outlives the alert.
CREATE TABLE alert_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER,
    created INTEGER NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    last_error TEXT,
    finished INTEGER
);
CREATE INDEX alert_outbox_due ON alert_outbox(next_attempt) WHERE state = 'pending';
CREATE INDEX alert_outbox_alert ON alert_outbox(alert_id, id);

CREATE TABLE alert_delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id INTEGER NOT NULL REFERENCES alert_outbox(id) ON DELETE CASCADE,
    time INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX alert_delivery_attempts_outbox ON alert_delivery_attempts(outbox_id);

CREATE TABLE maintenance_windows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    definition TEXT NOT NULL
);

CREATE TABLE acknowledgements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entity_type TEXT NOT NULL,
    entity_id INTEGER NOT NULL,
    who TEXT NOT NULL,
    at INTEGER NOT NULL,
    comment TEXT NOT NULL,
    cleared_at INTEGER
);
CREATE INDEX acknowledgements_entity ON acknowledgements(entity_type, entity_id);
