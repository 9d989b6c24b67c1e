"""oorfix: turn an out-of-order troubleshooting guide into verified, auditable automation."""

__version__ = "0.1.0"
