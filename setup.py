"""The compiled parts of polysnipe; everything else is declared in pyproject.toml.

setuptools builds each extension in place beside its Python counterpart (editable installs load it
from src/), so `make install` compiles them on a fresh machine with gcc and the Python headers.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # the dense L2 book, core.book's compiled twin (src/core/_book.c)
        Extension(
            "polysnipe.core._book",
            sources=["src/core/_book.c"],
            depends=["src/core/_book_api.h"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wno-missing-field-initializers"],
        ),
        # a price change's engine work in one call, beside market_handlers.py (src/core/_market.c)
        Extension(
            "polysnipe.core._market",
            sources=["src/core/_market.c"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wno-missing-field-initializers"],
        ),
        # the simulated venue's per-delta book upkeep, beside venue.py (src/adapters/sim/_venue.c)
        Extension(
            "polysnipe.adapters.sim._venue",
            sources=["src/adapters/sim/_venue.c"],
            include_dirs=["src/core"],
            depends=["src/core/_book_api.h"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wno-missing-field-initializers"],
        ),
        # the Spread Hunter's per-event state, beside spread_hunter.py (src/core/signals/_hunter.c); its
        # floats must round as Python's do, so no fused multiply-adds
        Extension(
            "polysnipe.core.signals._hunter",
            sources=["src/core/signals/_hunter.c"],
            include_dirs=["src/core"],
            depends=["src/core/_book_api.h"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wno-missing-field-initializers", "-ffp-contract=off"],
        ),
        # Liquidity Vacuum's per-event state, beside liquidity_vacuum.py (src/core/signals/_vacuum.c)
        Extension(
            "polysnipe.core.signals._vacuum",
            sources=["src/core/signals/_vacuum.c"],
            include_dirs=["src/core"],
            depends=["src/core/_book_api.h"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wno-missing-field-initializers"],
        ),
        # the backtest loop's market events between the venue, the feed delay and the step, beside
        # loop.py (src/runners/_loop.c)
        Extension(
            "polysnipe.runners._loop",
            sources=["src/runners/_loop.c"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wno-missing-field-initializers"],
        ),
        # a V2 order's two EIP-712 keccak hashes in one call, beside signing.py (src/adapters/clob/_orderhash.c)
        Extension(
            "polysnipe.adapters.clob._orderhash",
            sources=["src/adapters/clob/_orderhash.c"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wno-missing-field-initializers"],
        ),
        # the market channel's price_change fast path, beside parsing.py (src/adapters/clob/_fastdecode.c)
        Extension(
            "polysnipe.adapters.clob._fastdecode",
            sources=["src/adapters/clob/_fastdecode.c"],
            include_dirs=["src/core"],
            depends=["src/core/_book_api.h"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wno-missing-field-initializers"],
        ),
    ],
)
