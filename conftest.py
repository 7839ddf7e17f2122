"""Root pytest configuration shared by every member's suite.

Sets up 8 simulated host devices *before* any test imports JAX, so that sharding code paths run on a
single CPU. Must not import jax itself: ifvit-data's environment does not have it.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests build many small models: the 'rbg' PRNG compiles its initialisers ~4x faster than threefry
# on this CPU (measured: tiny LoFTR init 11 s vs 47 s cold). Library code does not depend on it.
os.environ.setdefault("JAX_DEFAULT_PRNG_IMPL", "rbg")
# The `ifvit` command keeps compiled programs in the user's cache folder by default; tests never
# write there. scripts/test.sh sets JAX_COMPILATION_CACHE_DIR (a scratch folder), which wins.
os.environ.setdefault("IFVIT_COMPILE_CACHE", "off")
