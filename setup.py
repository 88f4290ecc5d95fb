"""Build of the optional C extensions ``ledger._chainhash`` and ``desensitize.transforms._keyedhash``
(everything else is in pyproject.toml).

Why a setup.py: pyproject.toml's ext-modules table is still experimental in setuptools; this is
the stable way. The extension is optional: when no C compiler, Python headers, sqlite3.h or
OpenSSL headers are at hand, the build goes on without it and the ledger verifier falls back to
its DuckDB path (the same report, slower: ledger/native.py). It links the system libsqlite3 (the
library Python's own _sqlite3 module links, so that the process holds one copy of SQLite),
OpenSSL's libcrypto (SHA-256, with the CPU's SHA extensions) and libdl (the one-copy check).
``_keyedhash`` (the keyed pseudonyms of a column, HMAC-SHA256 in libcrypto) is optional the same
way: without it desensitize.transforms.pseudonyms hashes in DuckDB or hashlib, to the same bytes.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ledger._chainhash",
            sources=["ledger/_chainhash.c"],
            libraries=["sqlite3", "crypto", "dl"],
            extra_compile_args=["-O2", "-pthread", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            extra_link_args=["-pthread"],
            optional=True,
        ),
        Extension(
            "desensitize.transforms._keyedhash",
            sources=["desensitize/transforms/_keyedhash.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
    ]
)
