"""The redemption API sandbox: Returning.AI, fabric and Capillary partner APIs, from their specs."""
__version__ = "0.1.0"  # the package's version (pyproject.toml reads it from here)

from .app import Sandbox, create_app  # noqa: E402
from .config import Settings  # noqa: E402

__all__ = ["Sandbox", "Settings", "create_app", "__version__"]
