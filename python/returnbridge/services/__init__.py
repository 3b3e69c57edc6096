"""gRPC servicers of the pipeline: ReturnsService, InventoryService, AdminService."""
