"""Swift: ToO requests (Swift ToO API), XRT products (UKSSDC) and archived observations."""

from .facility import SwiftFacility

__all__ = ["SwiftFacility"]
