"""LCO and SOAR instruments, all reached through LCO's Observation Portal: one client
(``portal.py``), its forms (``forms.py``), the archive's frame listing (``archive.py``), and one
module per observatory (``lco.py``, ``soar.py``)."""

from .lco import FloydsFacility, MuscatFacility, SinistroFacility, SpectralFacility
from .portal import ObservationPortalFacility
from .soar import GoodmanImagerFacility, GoodmanSpectrographFacility, TripleSpecFacility

__all__ = [
    "FloydsFacility",
    "GoodmanImagerFacility",
    "GoodmanSpectrographFacility",
    "MuscatFacility",
    "ObservationPortalFacility",
    "SinistroFacility",
    "SpectralFacility",
    "TripleSpecFacility",
]
