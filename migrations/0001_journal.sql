-- The journal: every decision an operator needs to reconstruct a snipe, keyed by the opportunity's
-- correlation id. Money and sizes are BIGINT micro-units (1e-6 USDC or shares), never floating point.
-- Applied in file-name order; each file runs once, in one transaction.

CREATE TABLE IF NOT EXISTS wallets (
    address          TEXT PRIMARY KEY,              -- Safe or deposit wallet (maker / funder)
    kind             TEXT NOT NULL CHECK (kind IN ('safe', 'deposit', 'eoa')),
    owner            TEXT NOT NULL,                 -- the EOA that signs for it
    trader           TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS opportunities (
    id               TEXT PRIMARY KEY,              -- deterministic from its inputs: the idempotency key
    correlation_id   TEXT NOT NULL,
    strategy         TEXT NOT NULL,
    market           TEXT NOT NULL,                 -- condition id
    token_id         TEXT NOT NULL,
    side             TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    size_micro       BIGINT NOT NULL CHECK (size_micro > 0),
    limit_price_micro BIGINT NOT NULL CHECK (limit_price_micro > 0 AND limit_price_micro < 1000000),
    fair_value_micro BIGINT NOT NULL,
    edge_micro       BIGINT NOT NULL,
    confidence       DOUBLE PRECISION NOT NULL,     -- signal math, not money
    created_ms       BIGINT NOT NULL,
    expires_ms       BIGINT NOT NULL,
    reason           TEXT NOT NULL,
    policy           TEXT NOT NULL DEFAULT '',
    arrival_price_micro BIGINT,
    outcome          TEXT CHECK (outcome IN ('rejected', 'expired', 'ordered', 'filled', 'partly_filled', 'failed')),
    outcome_reasons  TEXT[] NOT NULL DEFAULT '{}',
    filled_size_micro BIGINT NOT NULL DEFAULT 0,
    avg_price_micro  BIGINT NOT NULL DEFAULT 0,
    ended_ms         BIGINT
);
CREATE INDEX IF NOT EXISTS opportunities_correlation ON opportunities (correlation_id);

CREATE TABLE IF NOT EXISTS risk_decisions (
    id               BIGSERIAL PRIMARY KEY,
    opportunity_id   TEXT NOT NULL REFERENCES opportunities (id),
    correlation_id   TEXT NOT NULL,
    approved         BOOLEAN NOT NULL,
    requested_size_micro BIGINT NOT NULL,
    approved_size_micro  BIGINT NOT NULL,
    reasons          TEXT[] NOT NULL DEFAULT '{}',
    ts_ms            BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS orders (
    order_id         TEXT PRIMARY KEY,              -- ours; the signing salt derives from it
    order_hash       TEXT UNIQUE,                   -- the venue's orderID (EIP-712 digest)
    opportunity_id   TEXT NOT NULL REFERENCES opportunities (id),
    correlation_id   TEXT NOT NULL,
    wallet           TEXT NOT NULL,
    routing          TEXT NOT NULL,
    token_id         TEXT NOT NULL,
    side             TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    price_micro      BIGINT NOT NULL,
    size_micro       BIGINT NOT NULL,
    order_type       TEXT NOT NULL CHECK (order_type IN ('GTC', 'GTD', 'FOK', 'FAK')),
    post_only        BOOLEAN NOT NULL DEFAULT false,
    status           TEXT NOT NULL,
    filled_size_micro BIGINT NOT NULL DEFAULT 0,
    builder_code     TEXT NOT NULL DEFAULT '',
    created_ms       BIGINT NOT NULL,
    updated_ms       BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_correlation ON orders (correlation_id);

CREATE TABLE IF NOT EXISTS fills (
    trade_id         TEXT NOT NULL,
    order_id         TEXT NOT NULL REFERENCES orders (order_id),
    status           TEXT NOT NULL DEFAULT 'MATCHED',  -- MATCHED, MINED, CONFIRMED, RETRYING, FAILED
    token_id         TEXT NOT NULL,
    side             TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    price_micro      BIGINT NOT NULL,
    size_micro       BIGINT NOT NULL CHECK (size_micro > 0),
    liquidity        TEXT NOT NULL CHECK (liquidity IN ('maker', 'taker')),
    fee_usdc_micro   BIGINT NOT NULL DEFAULT 0,
    fee_shares_micro BIGINT NOT NULL DEFAULT 0,
    ts_ms            BIGINT NOT NULL,
    PRIMARY KEY (trade_id, order_id)                -- a trade counts once, whatever its status updates
);

CREATE TABLE IF NOT EXISTS errors (
    id               BIGSERIAL PRIMARY KEY,
    source           TEXT NOT NULL,                 -- stream or file the bad input came from
    position         TEXT NOT NULL,                 -- stream id or line number
    reason           TEXT NOT NULL,
    payload          TEXT,
    correlation_id   TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS relayer_transactions (
    id               TEXT PRIMARY KEY,              -- the relayer's transaction id
    wallet           TEXT NOT NULL,
    kind             TEXT NOT NULL,                 -- deploy, approve, transfer, split, merge, redeem
    state            TEXT NOT NULL,
    tx_hash          TEXT,
    route            TEXT NOT NULL CHECK (route IN ('relayer', 'polygon')),
    correlation_id   TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS signing_audit (
    id               BIGSERIAL PRIMARY KEY,
    caller           TEXT NOT NULL,
    purpose          TEXT NOT NULL,                 -- order, l1_auth, builder_headers, safe_tx
    digest           TEXT NOT NULL,
    signer_address   TEXT NOT NULL,
    correlation_id   TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS kill_switches (
    scope            TEXT PRIMARY KEY,              -- global, strategy:<name>, market:<id>, wallet:<addr>
    engaged          BOOLEAN NOT NULL,
    reason           TEXT NOT NULL,
    changed_by       TEXT NOT NULL,
    changed_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS alerts (
    id               BIGSERIAL PRIMARY KEY,
    severity         TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    code             TEXT NOT NULL,
    message          TEXT NOT NULL,
    correlation_id   TEXT NOT NULL DEFAULT '',
    ts_ms            BIGINT NOT NULL,
    delivered        BOOLEAN NOT NULL DEFAULT false
);
