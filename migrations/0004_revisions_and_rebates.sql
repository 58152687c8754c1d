-- An opportunity's outcome can be revised by a fill that lands after it (the last revision stands),
-- and a maker fill can earn a rebate (paid by the venue daily; counted when earned).

ALTER TABLE opportunities
    ADD COLUMN outcome_revision  INTEGER NOT NULL DEFAULT 0 CHECK (outcome_revision >= 0);

ALTER TABLE fills
    ADD COLUMN rebate_usdc_micro BIGINT NOT NULL DEFAULT 0 CHECK (rebate_usdc_micro >= 0);
