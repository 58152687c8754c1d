"""A pytest plugin (`-p mutation_profile`) registering the hypothesis profile of mutation runs.

A mutated run stops at its first failing example without shrinking it (shrinking would only spend the
time budget) and neither reads nor writes the example database, so a mutant's failures never replay
in ordinary test runs. Registered at import, before the hypothesis plugin loads the profile.
"""

from __future__ import annotations

from hypothesis import Phase, settings

settings.register_profile("mutation", phases=[Phase.explicit, Phase.generate], database=None)
