"""The ZTF forced photometry service's status codes, used both as a job's ``exitcode`` (the job
list) and as an epoch's ``procstatus`` (the light curve; possibly several, comma-separated).

Source: the code list of IPAC's forced photometry pipeline (as SkyPortal's
``ZTF_PHOTOMETRY_CODES`` and the ZFPS documentation give it).
"""

from __future__ import annotations

MEANINGS: dict[int, str] = {
    0: "successful execution",
    56: "some epochs may be affected by bad (including NaN'd) pixels",
    57: "some epochs had no reference-catalog source within 5 arcsec",
    58: "some epochs had a reference PSF catalog missing from the archive",
    59: "some epochs may have suspect uncertainties (difference image created early)",
    60: "some epochs had upsampled difference-image PSF dimensions that were not odd",
    61: "some epochs had difference-image cutouts off the image or too close to an edge",
    62: "the start JD was before the survey start and was reset to 2018-03-17",
    63: "no records (epochs) were returned for this position and window",
    64: "catastrophic error",
    65: "the end JD is before the survey start (2018-03-17)",
    255: "database connection or query error",
}

#: Job exit codes that end a job without photometry.
NO_DATA_EXITS = frozenset({63, 65})
FAILED_EXITS = frozenset({64, 255})
#: Epoch codes kept with ``keep_flagged``: the measurement exists but may be affected.
FLAGGED = frozenset({56, 57, 58})
#: JD of 2018-03-17T00:00 UTC, the start of the ZTF survey (earlier start JDs are reset to it).
SURVEY_START_JD = 2458194.5


def meaning(code: int | None) -> str:
    """The code in words, e.g. ``"code 63: no records ..."``; unknown codes say so."""
    if code is None:
        return "no exit code"
    return f"code {code}: {MEANINGS.get(code, 'a code IPAC does not document')}"
