"""Pure-Python reference model of the compiled core (the executable specification)."""

from oms_core.reference.model import ReferenceModel

__all__ = ["ReferenceModel"]
