-- API tokens: only a SHA-256 of each token is kept.
CREATE TABLE IF NOT EXISTS api_tokens (
    token_sha256 text PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    enterprises  text[] NOT NULL,  -- '{*}' = every enterprise
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- Jurisdiction scopes (yujing/registry/scope.py): '{*}' = unrestricted in that dimension.
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS divisions text[] NOT NULL DEFAULT '{*}';
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS sectors text[] NOT NULL DEFAULT '{*}';
ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS parks text[] NOT NULL DEFAULT '{*}';
