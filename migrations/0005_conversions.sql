-- Neg-risk conversions (NegRiskAdapter.convertPositions): each request and each result, in order.
-- A table of their own rather than rows of settlements: a conversion names an event and a set of its
-- markets and returns collateral plus YES shares of the event's other markets, where a settlements row
-- names one market and one amount (and its kind CHECK would have to be dropped and rebuilt).

CREATE TABLE IF NOT EXISTS conversions (
    id                BIGSERIAL PRIMARY KEY,
    kind              TEXT NOT NULL CHECK (kind IN ('convert_requested', 'converted')),
    wallet            TEXT NOT NULL,
    event_id          TEXT NOT NULL,                -- the markets' shared neg_risk_market_id
    markets           TEXT[] NOT NULL CHECK (cardinality(markets) >= 1),  -- condition ids whose NO converts
    size_micro        BIGINT NOT NULL CHECK (size_micro >= 0),            -- NO shares of each market
    collateral_micro  BIGINT NOT NULL DEFAULT 0 CHECK (collateral_micro >= 0),
    yes_markets       TEXT[] NOT NULL DEFAULT '{}', -- condition ids whose YES the wallet received
    yes_size_micro    BIGINT NOT NULL DEFAULT 0 CHECK (yes_size_micro >= 0),  -- YES shares of each
    correlation_id    TEXT NOT NULL DEFAULT '',
    ts_ms             BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversions_wallet_event ON conversions (wallet, event_id, id);
