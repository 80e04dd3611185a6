"""Index Maker: a crypto index issuer's solver service."""

__version__ = "0.1.0"
