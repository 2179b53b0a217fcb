"""Core tests use the fixtures of `hub.testing` (registered as a pytest plugin by the package)."""
