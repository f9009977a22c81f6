"""The redemption API sandbox: Returning.AI, fabric and Capillary partner APIs, from their specs."""
from .app import Sandbox, create_app
from .config import Settings

__all__ = ["Sandbox", "Settings", "create_app"]
