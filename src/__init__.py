"""polysnipe: finds and executes snipes on Polymarket's CLOB.

`src/` is the root of this package (see DESIGN.md section 2), so `import polysnipe.core` works and
no top-level `core` module leaks into site-packages.
"""

__all__: list[str] = []
