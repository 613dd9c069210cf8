"""Pluggable follow-up facility classes for SkyPortal.

Importing the package imports no facility module: facilities load lazily from the registry.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
