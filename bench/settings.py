"""The product's settings with two bench-only additions: the naive baseline's URLs and a static root
of its own (collectstatic for the production-like, DEBUG-off server must not touch the repo's)."""

from config.settings import *  # noqa: F403 (the product's settings, unchanged)
from config.settings import VAR_DIR

ROOT_URLCONF = "bench.urls"
STATIC_ROOT = VAR_DIR / "bench" / "staticfiles"
