"""The vendors the sandbox serves. A new vendor is a folder exposing a `vendor` Mount, listed here."""
from . import capillary, fabric, returning_ai

VENDORS = [returning_ai.vendor, fabric.vendor, capillary.vendor]
