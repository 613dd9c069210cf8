"""The Liverpool Telescope over RTML 3.1a and SOAP: IO:O, IO:I and SPRAT."""

from .facility import LiverpoolFacility
from .instruments import IOIFacility, IOOFacility, SPRATFacility

__all__ = ["IOIFacility", "IOOFacility", "LiverpoolFacility", "SPRATFacility"]
