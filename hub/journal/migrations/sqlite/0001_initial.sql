-- The journal as of the first versioned schema (hub 0.1): every table and index.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS applications (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    service TEXT NOT NULL,
    route TEXT,
    state TEXT NOT NULL,
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    file_number TEXT,
    error TEXT,
    error_code TEXT,
    search TEXT NOT NULL,
    doc TEXT NOT NULL,
    purged_at REAL,
    purge_policy TEXT,
    UNIQUE (source, external_id)
);
CREATE INDEX IF NOT EXISTS applications_state ON applications (state, received_at);
CREATE INDEX IF NOT EXISTS applications_received ON applications (received_at);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id TEXT NOT NULL REFERENCES applications (id),
    type TEXT NOT NULL,
    at REAL NOT NULL,
    step TEXT,
    target TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_application ON events (application_id, id);

CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id TEXT NOT NULL REFERENCES applications (id),
    step TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    attempt_base INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    due_at REAL NOT NULL,
    lease_token TEXT,
    lease_until REAL,
    last_error TEXT,
    result TEXT,
    checkpoints TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    key TEXT,
    error_code TEXT,
    subject TEXT NOT NULL DEFAULT '',
    UNIQUE (application_id, step, target, subject)
);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks (state, due_at);
CREATE INDEX IF NOT EXISTS tasks_claim ON tasks (state, target, due_at);
CREATE INDEX IF NOT EXISTS tasks_application ON tasks (application_id, id);
-- keys that may be used once (e.g. a SAML assertion id per identity provider), each bound to its
-- first owner until it expires; shared by every connector of the hub
CREATE TABLE IF NOT EXISTS once_keys (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX IF NOT EXISTS once_keys_expiry ON once_keys (expires_at);
CREATE TABLE IF NOT EXISTS application_revisions (
    application_id TEXT NOT NULL REFERENCES applications (id),
    revision INTEGER NOT NULL,
    superseded_at REAL NOT NULL,
    doc TEXT NOT NULL,
    tasks TEXT NOT NULL,
    PRIMARY KEY (application_id, revision)
);
CREATE TABLE IF NOT EXISTS sequences (
    name TEXT NOT NULL,
    period TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (name, period)
);
CREATE TABLE IF NOT EXISTS akte_file_numbers (
    akte_key TEXT PRIMARY KEY,
    file_number TEXT NOT NULL,
    application_id TEXT NOT NULL REFERENCES applications (id)
);
-- inbound messages a polled source could not take (hub.held)
CREATE TABLE IF NOT EXISTS held_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sender TEXT,
    state TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    reason TEXT NOT NULL,
    fetches INTEGER NOT NULL DEFAULT 0,
    next_fetch_at REAL,
    application_id TEXT,
    first_seen_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    decided_by TEXT,
    decided_at REAL,
    UNIQUE (source, message_id)
);
CREATE INDEX IF NOT EXISTS held_messages_state ON held_messages (state, source);
-- answers of the Fachverfahren (hub.answers), each stored once per connector and the system's own id
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector TEXT NOT NULL,
    answer_id TEXT NOT NULL,
    application_id TEXT NOT NULL REFERENCES applications (id),
    status TEXT NOT NULL,
    received_at REAL NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (connector, answer_id)
);
CREATE INDEX IF NOT EXISTS answers_application ON answers (application_id, id);
CREATE INDEX IF NOT EXISTS answers_answer_id ON answers (answer_id);
-- every id other systems gave an application (its `correlations`), kept in step with its document so
-- that any of them finds it by index
CREATE TABLE IF NOT EXISTS correlations (
    application_id TEXT NOT NULL REFERENCES applications (id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (application_id, key, value)
);
CREATE INDEX IF NOT EXISTS correlations_value ON correlations (value);
-- each target's circuit breaker as of its last change (hub.gate)
CREATE TABLE IF NOT EXISTS circuits (
    target TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    failures INTEGER NOT NULL,
    open_seconds REAL NOT NULL,
    open_until REAL,
    changed_at REAL NOT NULL,
    error_code TEXT
);
CREATE INDEX IF NOT EXISTS applications_external_id ON applications (external_id);
CREATE INDEX IF NOT EXISTS applications_file_number ON applications (file_number);
-- the audit trail: one row per operator action (hub.actions)
CREATE TABLE IF NOT EXISTS operator_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    operator TEXT,
    action TEXT NOT NULL,
    reason TEXT,
    subject TEXT NOT NULL,
    count INTEGER NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS operator_actions_action ON operator_actions (action, id);
-- targets an operator paused: the bus starts none of their tasks (hub.gate)
CREATE TABLE IF NOT EXISTS target_pauses (
    target TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    reason TEXT NOT NULL,
    paused_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS alerts_unsent ON alerts (sent_at, next_attempt_at);
-- dead steps already reported, by task and the moment it went dead (dead again after a replay is news)
CREATE TABLE IF NOT EXISTS alerted_tasks (
    task_id INTEGER NOT NULL,
    dead_at REAL NOT NULL,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    PRIMARY KEY (task_id, dead_at)
);
CREATE INDEX IF NOT EXISTS applications_purge ON applications (purged_at, updated_at, id);
CREATE INDEX IF NOT EXISTS events_type_at ON events (type, at, target);
