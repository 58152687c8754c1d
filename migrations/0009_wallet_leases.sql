-- Each wallet's balance and exposure is owned by exactly one engine at a time (DESIGN.md 7): the
-- engine holding an unexpired lease. An engine renews its lease while it runs; when it dies, the lease
-- runs out and another engine may take the wallet over. Taken and renewed under the row's lock.
CREATE TABLE IF NOT EXISTS wallet_leases (
    wallet        TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,                 -- the engine incarnation (host:pid:start)
    acquired_ms   BIGINT NOT NULL CHECK (acquired_ms >= 0),
    expires_ms    BIGINT NOT NULL CHECK (expires_ms > acquired_ms)
);
