"""returnbridge: returns integration between an RMS and SAP S/4HANA, Oracle and NetSuite."""

__version__ = "0.1.0"

__all__ = ["__version__"]
