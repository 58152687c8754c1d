"""Postgres: the journal's schema (migrations/) and, in later issues, the journal adapter."""
