-- The journal keeps the engine's typed records whole (core/messages.py JournalRecord): every field of
-- each record has a column, so a record read back equals the record written.

ALTER TABLE opportunities
    ADD COLUMN urgency           TEXT NOT NULL DEFAULT '',
    ADD COLUMN group_id          TEXT NOT NULL DEFAULT '',       -- legs of one basket share it
    ADD COLUMN recorded_ms       BIGINT,                         -- when the engine journaled it
    ADD COLUMN outcome_order_ids TEXT[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT opportunities_filled CHECK (filled_size_micro >= 0);

ALTER TABLE risk_decisions
    ADD CONSTRAINT risk_decisions_sizes CHECK (requested_size_micro >= 0 AND approved_size_micro >= 0
                                               AND approved_size_micro <= requested_size_micro);

ALTER TABLE orders
    ADD COLUMN strategy          TEXT NOT NULL DEFAULT '',
    ADD COLUMN market            TEXT NOT NULL DEFAULT '',       -- condition id
    ADD COLUMN tick_size_micro   BIGINT NOT NULL DEFAULT 10000 CHECK (tick_size_micro > 0),
    ADD COLUMN neg_risk          BOOLEAN NOT NULL DEFAULT false, -- which exchange it signs for
    ADD COLUMN expiration_ms     BIGINT NOT NULL DEFAULT 0 CHECK (expiration_ms >= 0),
    ADD COLUMN parent_id         TEXT NOT NULL DEFAULT '',       -- iceberg parent (opportunity id)
    ADD CONSTRAINT orders_price CHECK (price_micro > 0 AND price_micro < 1000000),
    ADD CONSTRAINT orders_size CHECK (size_micro > 0),
    ADD CONSTRAINT orders_filled CHECK (filled_size_micro >= 0 AND filled_size_micro <= size_micro);
CREATE INDEX IF NOT EXISTS orders_opportunity ON orders (opportunity_id);

-- every status an order went through, in the order the engine learned them
CREATE TABLE IF NOT EXISTS order_events (
    id               BIGSERIAL PRIMARY KEY,
    order_id         TEXT NOT NULL REFERENCES orders (order_id),
    status           TEXT NOT NULL CHECK (status IN ('new', 'signed', 'posted', 'live', 'partly_filled',
                                                      'filled', 'cancelled', 'expired', 'rejected', 'unknown')),
    filled_size_micro BIGINT NOT NULL CHECK (filled_size_micro >= 0),
    reason           TEXT NOT NULL DEFAULT '',
    venue_order_id   TEXT NOT NULL DEFAULT '',
    ts_ms            BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS order_events_order ON order_events (order_id, id);

ALTER TABLE fills
    ADD COLUMN correlation_id    TEXT NOT NULL DEFAULT '',
    ADD CONSTRAINT fills_price CHECK (price_micro > 0 AND price_micro < 1000000),
    ADD CONSTRAINT fills_fees CHECK (fee_usdc_micro >= 0 AND fee_shares_micro >= 0),
    ADD CONSTRAINT fills_status CHECK (status IN ('MATCHED', 'MINED', 'CONFIRMED', 'RETRYING', 'FAILED'));

ALTER TABLE errors
    ADD COLUMN ts_ms             BIGINT NOT NULL DEFAULT 0;

ALTER TABLE alerts
    ADD COLUMN details           JSONB NOT NULL DEFAULT '{}';

ALTER TABLE kill_switches
    ADD COLUMN ts_ms             BIGINT NOT NULL DEFAULT 0;

-- who engaged or released which kill switch, when and why; kill_switches holds the current state
CREATE TABLE IF NOT EXISTS kill_switch_events (
    id               BIGSERIAL PRIMARY KEY,
    scope            TEXT NOT NULL,
    engaged          BOOLEAN NOT NULL,
    reason           TEXT NOT NULL,
    changed_by       TEXT NOT NULL,
    ts_ms            BIGINT NOT NULL
);
