"""The legal tables the checker enforces (spec §7), each kept in one place with its source.

* ``EEA``: where personal data may go without a transfer mechanism (GDPR art. 44).
* ``ADEQUACY``: the countries with an EU adequacy decision (GDPR art. 45), as of
  ``ADEQUACY_AS_OF``; ``transfer adequacy`` is valid only for these.
* ``COUNTRIES``: every ISO 3166-1 alpha-2 code, so that a misspelt ``location`` is caught.
* ``ART9_PURPOSE_KINDS``: which purpose kinds each GDPR art. 9(2) ground fits (spec §7.6).
* durations in hours, for the 72-hour breach rule (GDPR art. 33) and retention comparisons.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from types import MappingProxyType

#: the 27 EU member states (ISO 3166-1 alpha-2; Greece is GR, not the EU's "EL")
EU = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT",
    "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
})
#: the European Economic Area: the EU plus Iceland, Liechtenstein and Norway
EEA = EU | {"IS", "LI", "NO"}

#: The date the adequacy list below was last checked against the European Commission's page
#: "Adequacy decisions" (commission.europa.eu, data protection, international dimension).
ADEQUACY_AS_OF = datetime.date(2025, 10, 1)
#: Countries (and territories) with an EU adequacy decision under GDPR art. 45, with a note
#: where the decision covers only part of the recipients there.
ADEQUACY: Mapping[str, str] = MappingProxyType({
    "AD": "Andorra",
    "AR": "Argentina",
    "CA": "Canada (commercial organisations under PIPEDA only)",
    "CH": "Switzerland",
    "FO": "Faroe Islands",
    "GB": "United Kingdom",
    "GG": "Guernsey",
    "IL": "Israel",
    "IM": "Isle of Man",
    "JE": "Jersey",
    "JP": "Japan",
    "KR": "Republic of Korea",
    "NZ": "New Zealand",
    "US": "United States (only organisations certified under the EU-US Data Privacy Framework)",
    "UY": "Uruguay",
})

#: every officially assigned ISO 3166-1 alpha-2 code
_ISO_3166_ALPHA_2 = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW
BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI
FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN
IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME
MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF
PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE
YT ZA ZM ZW
"""
COUNTRIES = frozenset(_ISO_3166_ALPHA_2.split())
#: common non-ISO spellings, for a better "did you mean"
COUNTRY_ALIASES: Mapping[str, str] = MappingProxyType({"EL": "GR", "UK": "GB", "NLD": "NL", "DEU": "DE",
                                                         "BEL": "BE", "USA": "US", "GBR": "GB"})

CONTROLLER_KINDS = ("public", "private")
PARTNER_ROLES = ("processor", "controller", "joint_controller")
PARTNER_KINDS = ("vendor", "government", "school", "swv", "care", "research", "exam", "other")
TRANSFERS = ("adequacy", "scc", "bcr", "derogation")
AGREEMENT_MODELS = ("convenant_3", "convenant_4", "own")
PURPOSE_KINDS = ("education", "organisation", "funding", "compulsory_education", "care", "parent_information",
                 "publication", "research", "transfer", "archive", "other")
#: purpose kinds of the school's core task: consent is not freely given there (GDPR art. 7(4), recital 43)
CORE_PURPOSE_KINDS = frozenset({"education", "organisation", "funding", "compulsory_education"})
#: purpose kinds under which a student who has left may still be decided on (spec §7.7)
AFTER_LEAVING_KINDS = frozenset({"transfer", "archive"})
#: partner kinds that may receive a national_id field (UAVG art. 46, Wet pseudonimisering)
NATIONAL_ID_KINDS = ("government", "school", "swv", "exam")
#: partner kinds that count as an independent vendor for special data (UAVG art. 30)
VENDOR_KINDS = frozenset({"vendor", "other"})

ANY = None
#: GDPR art. 9(2) ground -> the purpose kinds it fits (None: any kind), spec §7.6
ART9_PURPOSE_KINDS: Mapping[str, tuple[str, ...] | None] = MappingProxyType({
    "explicit_consent": ANY,
    "vital_interest": ANY,
    "legal_claims": ANY,
    "public_data": ANY,
    "health_care": ("care",),
    "public_health": ("care",),
    "substantial_public_interest": ("education", "care", "compulsory_education", "funding", "transfer"),
    "archiving": ("research", "archive"),
    "employment": ("organisation",),
})

#: GDPR art. 33(1): the controller notifies the supervisory authority within 72 hours
BREACH_LIMIT_HOURS = 72

# hours in one unit, as (shortest, longest): a month is 28 to 31 days, a year 365 or 366
_HOURS: Mapping[str, tuple[int, int]] = MappingProxyType({
    "hours": (1, 1), "days": (24, 24), "weeks": (168, 168),
    "months": (28 * 24, 31 * 24), "years": (365 * 24, 366 * 24),
})
_SINGULAR = {"hour": "hours", "day": "days", "week": "weeks", "month": "months", "year": "years"}


def _unit(unit: str) -> str | None:
    u = _SINGULAR.get(unit, unit)
    return u if u in _HOURS else None


def hours_range(amount: int, unit: str) -> tuple[int, int] | None:
    """The shortest and longest number of hours ``amount unit`` can mean (None: unknown unit)."""
    u = _unit(unit)
    if u is None:
        return None
    if u in ("months", "years"):
        months = amount * 12 if u == "years" else amount
        years, rest = divmod(months, 12)
        return (years * 365 * 24 + rest * 28 * 24, years * 366 * 24 + rest * 31 * 24)
    lo, hi = _HOURS[u]
    return (amount * lo, amount * hi)


def certainly_longer(a: tuple[int, str], b: tuple[int, str]) -> bool:
    """Is duration ``a`` longer than ``b`` whatever the calendar (month and year lengths)?

    Months and years compare exactly with each other (a year is 12 months), as do hours,
    days and weeks; across the two families ``a`` must be longer at its shortest than ``b``
    at its longest, so "31 days" is not longer than "1 month", but "32 days" is.
    """
    ua, ub = _unit(a[1]), _unit(b[1])
    if ua is None or ub is None:
        return False
    calendar = ("months", "years")
    if (ua in calendar) == (ub in calendar):
        if ua in calendar:
            return a[0] * (12 if ua == "years" else 1) > b[0] * (12 if ub == "years" else 1)
        return a[0] * _HOURS[ua][0] > b[0] * _HOURS[ub][0]
    ra, rb = hours_range(*a), hours_range(*b)
    return ra is not None and rb is not None and ra[0] > rb[1]
