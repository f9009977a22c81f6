"""The vendors the sandbox serves. A new vendor is a folder with a `vendor` Mount, listed here."""
from .returning_ai import vendor as returning_ai

VENDORS = [returning_ai]
