-- A fill is provisional until its trade is CONFIRMED on chain, and undone when it FAILED (PROTOCOL.md
-- 10.3): each status a trade reports is kept, and the fill row carries the latest.

ALTER TABLE fills
    ADD COLUMN settlement_status TEXT NOT NULL DEFAULT 'MATCHED'
        CHECK (settlement_status IN ('MATCHED', 'MINED', 'CONFIRMED', 'RETRYING', 'FAILED'));

CREATE TABLE IF NOT EXISTS trade_settlements (
    id        BIGSERIAL PRIMARY KEY,
    trade_id  TEXT NOT NULL,
    order_id  TEXT NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('MATCHED', 'MINED', 'CONFIRMED', 'RETRYING', 'FAILED')),
    ts_ms     BIGINT NOT NULL,
    FOREIGN KEY (trade_id, order_id) REFERENCES fills (trade_id, order_id)
);
CREATE INDEX IF NOT EXISTS trade_settlements_fill ON trade_settlements (trade_id, order_id, id);
