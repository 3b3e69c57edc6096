"""Web console served by ``serve``: returns, dead letters, KPIs, mapping sandbox and inventory.

An outer layer like the CLI: it reads everything through the public gRPC API with the signed-in user's own
credential, and nothing in the package imports it.
"""

from returnbridge.console.server import ConsoleServer
from returnbridge.console.settings import ConsoleSettings

__all__ = ["ConsoleServer", "ConsoleSettings"]
