-- The durable order outbox (exactly-once orders across crashes). A row is committed after an order is
-- signed and before its bytes are sent; the order id is its key, so an order id is sent at most once
-- whatever restarts follow. `state` follows the venue's answer; a restarted engine resolves the rows
-- still 'sending' or 'unknown' by their hash on the venue, never by sending them again.
CREATE TABLE IF NOT EXISTS outbox (
    order_id        TEXT PRIMARY KEY REFERENCES orders (order_id),
    order_hash      TEXT NOT NULL CHECK (order_hash ~ '^0x[0-9a-f]{64}$'),
    payload_sha256  TEXT NOT NULL CHECK (payload_sha256 ~ '^[0-9a-f]{64}$'),
    signed_ms       BIGINT NOT NULL CHECK (signed_ms >= 0),
    state           TEXT NOT NULL DEFAULT 'sending'
        CHECK (state IN ('sending', 'unknown', 'acknowledged', 'rejected', 'ended', 'absent')),
    detail          TEXT NOT NULL DEFAULT '',
    updated_ms      BIGINT NOT NULL CHECK (updated_ms >= 0),
    -- the engine incarnation that sent it (a restart tells its own rows from its predecessor's)
    incarnation     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_unresolved ON outbox (state) WHERE state IN ('sending', 'unknown');
