"""gRPC servicers of the pipeline: ReturnsService, InventoryService, AdminService, and the submit path."""

from returnbridge.services.admin import AdminServicer
from returnbridge.services.intake import Intake
from returnbridge.services.inventory import InventoryServicer
from returnbridge.services.returns import ReturnsServicer
from returnbridge.services.validation_seam import gateway_validator, minimal_validate

__all__ = [
    "AdminServicer",
    "Intake",
    "InventoryServicer",
    "ReturnsServicer",
    "gateway_validator",
    "minimal_validate",
]
