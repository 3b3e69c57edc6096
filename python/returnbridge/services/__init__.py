"""gRPC servicers of the pipeline: ReturnsService, InventoryService, AdminService, and the submit path."""

from returnbridge.services.admin import AdminServicer
from returnbridge.services.intake import Intake
from returnbridge.services.inventory import InventoryServicer
from returnbridge.services.returns import ReturnsServicer

__all__ = [
    "AdminServicer",
    "Intake",
    "InventoryServicer",
    "ReturnsServicer",
]
