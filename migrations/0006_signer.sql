-- The signing server: its callers (credentials kept only as hashes) and its append-only,
-- hash-chained audit log of every request, allowed or refused (issue 14).

CREATE TABLE IF NOT EXISTS signer_callers (
    caller_id    TEXT PRIMARY KEY,              -- public part of the credential
    name         TEXT NOT NULL UNIQUE,
    secret_sha256 TEXT NOT NULL,                -- sha256 of the credential's secret part, hex
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at   TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS signer_audit (
    id              BIGSERIAL PRIMARY KEY,      -- insertion order (not covered by the chain)
    seq             BIGINT NOT NULL,            -- assigned by the server: 1, 2, 3, ... (covered by the chain)
    ts_ms           BIGINT NOT NULL,
    caller          TEXT NOT NULL,              -- caller name, '' when unauthenticated
    endpoint        TEXT NOT NULL,              -- METHOD path
    purpose         TEXT NOT NULL,              -- builder_headers, order, safe_tx, safe_create, other
    digest          TEXT NOT NULL,              -- what was signed (0x hex), '' when nothing was
    key_address     TEXT NOT NULL,
    notional_usdc_micro BIGINT NOT NULL,
    decision        TEXT NOT NULL CHECK (decision IN ('allowed', 'refused')),
    status          INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    latency_us      BIGINT NOT NULL,
    correlation_id  TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,              -- row_hash of seq - 1 ('' for seq 1)
    row_hash        TEXT NOT NULL               -- HMAC-SHA256(audit key, prev_hash || this row's fields)
);
CREATE INDEX IF NOT EXISTS signer_audit_seq ON signer_audit (seq);
CREATE INDEX IF NOT EXISTS signer_audit_day ON signer_audit (key_address, ts_ms) WHERE decision = 'allowed';

-- Append-only: the server's role may insert and read, never rewrite history.
CREATE OR REPLACE FUNCTION signer_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'signer_audit is append-only';
END $$;
DROP TRIGGER IF EXISTS signer_audit_no_rewrite ON signer_audit;
CREATE TRIGGER signer_audit_no_rewrite BEFORE UPDATE OR DELETE ON signer_audit
    FOR EACH ROW EXECUTE FUNCTION signer_audit_append_only();
