-- Merges of complete sets and redemptions of resolved markets: each request and each result, in order.
-- The relayer's own view of the transactions that carry them lives in relayer_transactions.

CREATE TABLE IF NOT EXISTS settlements (
    id               BIGSERIAL PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('merge_requested', 'redeem_requested', 'merged', 'redeemed')),
    wallet           TEXT NOT NULL,
    market           TEXT NOT NULL,                 -- condition id
    size_micro       BIGINT NOT NULL DEFAULT 0 CHECK (size_micro >= 0),   -- sets merged / shares redeemed
    winning_token    TEXT NOT NULL DEFAULT '',
    payout_micro     BIGINT NOT NULL DEFAULT 0 CHECK (payout_micro >= 0),
    correlation_id   TEXT NOT NULL DEFAULT '',
    ts_ms            BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS settlements_wallet_market ON settlements (wallet, market, id);
