"""Polymarket's Gamma API: market and event metadata (fee schedules, neg-risk events), PROTOCOL.md 11.5."""
