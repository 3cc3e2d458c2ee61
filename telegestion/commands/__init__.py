"""One module per ``telegestion`` command; each exposes ``register(subparsers)``."""
