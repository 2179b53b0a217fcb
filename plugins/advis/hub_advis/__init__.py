"""ADVIS (Kommunix): the Ausländerbehörde's Fachverfahren, reached with XAusländer messages over XTA."""

from __future__ import annotations

from .schema import SchemaSettings, XAuslaenderSchemaMissing, XAuslaenderSchemas, load_schemas

__all__ = ["SchemaSettings", "XAuslaenderSchemaMissing", "XAuslaenderSchemas", "load_schemas"]
