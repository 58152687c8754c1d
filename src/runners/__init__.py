"""Composition roots: containers, CLI and settings. No domain logic lives here."""
