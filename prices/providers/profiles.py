"""The providers that have instrument profiles (a client's `profile`, prices/providers/base.py), by
name: the ones the profile refresh asks (prices/profiles.py), and whose instruments allocation expects
a profile of. Built from the clients themselves, so it loads every client module."""

from prices.providers import PROVIDER_CLASSES, provider_class_get

PROFILES = frozenset(name for name in PROVIDER_CLASSES if provider_class_get(name).supports_profile())
