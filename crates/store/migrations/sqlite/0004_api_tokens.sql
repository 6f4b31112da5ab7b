-- API tokens: a user's long random secrets for scripts, acting with that user's role.
-- Only the SHA-256 of a secret is kept (the secret is 256 random bits, so a fast hash is
-- enough); it is looked up by that hash. Deleting the user deletes its tokens.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    last_used INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
