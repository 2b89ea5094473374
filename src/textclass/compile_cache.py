"""JAX's persistent compilation cache, turned on for Keras training.

Every ``fit`` builds a new Keras model, and JAX compiles its train step anew: 1-3 s on 2 cores,
as long as the CNN's whole training on 750 sentences. The compiled program depends only on the
architecture and the batch shapes, so cross-validation folds, search trials and reruns of the
same model compile once and read the rest from disk (``$TEXTCLASS_CACHE/jax``, shared by worker
processes). ``TEXTCLASS_COMPILE_CACHE=off`` turns it off; a cache directory the user configured
for JAX is left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

MIN_COMPILE_S = 0.1  # cache only programs that took this long to compile: not every tiny eager op

_enabled: Path | None = None


def use_compile_cache() -> Path | None:
    """Point JAX's persistent cache at ``$TEXTCLASS_CACHE/jax`` (once per process); return the folder,
    or None when turned off or already configured by the user."""
    global _enabled
    if _enabled is not None:
        return _enabled
    if os.environ.get("TEXTCLASS_COMPILE_CACHE", "").lower() in ("0", "off", "false", "no"):
        return None
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    if jax.config.jax_compilation_cache_dir:
        return None
    from textclass.models.encoders import cache_home

    folder = cache_home() / "jax"
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_S)
    compilation_cache.set_cache_dir(str(folder))
    compilation_cache.reset_cache()  # JAX decides once whether to use the cache: ask it again
    _enabled = folder
    return folder
