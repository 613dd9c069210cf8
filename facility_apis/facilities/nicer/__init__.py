"""NICER: Target of Opportunity requests through HEASARC ARK's web form."""

from .facility import NICERFacility

__all__ = ["NICERFacility"]
