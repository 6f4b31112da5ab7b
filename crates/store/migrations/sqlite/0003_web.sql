-- The web UI: login sessions and custom dashboards.

-- Only a SHA-256 of the session id is kept, so a copy of the database does not log anyone
-- in. A deleted user's sessions go with the user.
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions(expires);
CREATE INDEX web_sessions_user ON web_sessions(user_id);

-- Dashboards are shared by every user; the owner is who made it (kept NULL when that user
-- is deleted, so the dashboard stays). The layout is JSON the UI owns.
CREATE TABLE dashboards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    layout TEXT NOT NULL,
    updated INTEGER NOT NULL
);
