"""The domain core: rules about returns that hold whatever the transport, the bus or the ERP."""
