"""The GDPR art. 15 answer for one student: which organisation received which data, when, why.

A school hands this to a parent (or an adult student) who asks which recipients actually received
the student's data (art. 15(1)(c); CJEU C-154/21: the actual recipients, not categories). It is
built from the export log alone - the record keeps the titles and sensitivities of the moment - so
it stays right after the policy changed. Plain words in English or Dutch; Markdown, JSON or a
self-contained HTML page (no scripts, no fonts, no images from elsewhere; readable on a phone).
"""

from __future__ import annotations

import datetime
import html
import json
from typing import Any

from .log import ExportLog
from .record import ExportRecord

__all__ = ["FORMATS", "LANGUAGES", "build_access", "render_access"]

FORMATS = ("md", "json", "html")
LANGUAGES = ("en", "nl")

_BASIS = {
    "en": {"consent": "consent (GDPR art. 6(1)(a))", "contract": "necessary for a contract (GDPR art. 6(1)(b))",
           "legal_obligation": "a legal obligation of the school (GDPR art. 6(1)(c))",
           "vital_interest": "vital interests (GDPR art. 6(1)(d))",
           "public_task": "the school's public task (GDPR art. 6(1)(e))",
           "legitimate_interest": "legitimate interest (GDPR art. 6(1)(f))"},
    "nl": {"consent": "toestemming (AVG art. 6 lid 1 onder a)",
           "contract": "noodzakelijk voor een overeenkomst (AVG art. 6 lid 1 onder b)",
           "legal_obligation": "een wettelijke verplichting van de school (AVG art. 6 lid 1 onder c)",
           "vital_interest": "vitale belangen (AVG art. 6 lid 1 onder d)",
           "public_task": "de publieke taak van de school (AVG art. 6 lid 1 onder e)",
           "legitimate_interest": "gerechtvaardigd belang (AVG art. 6 lid 1 onder f)"},
}
_SENSITIVE = {
    "en": {"special": "special category of personal data (GDPR art. 9)", "criminal": "criminal-law data (art. 10)",
           "national_id": "citizen service number (BSN) or education number"},
    "nl": {"special": "bijzonder persoonsgegeven (AVG art. 9)", "criminal": "strafrechtelijk gegeven (art. 10)",
           "national_id": "burgerservicenummer (BSN) of onderwijsnummer"},
}
_TRANSFORM = {"en": {"pseudonym": "as a pseudonym, not the value itself", "year": "only the year"},
              "nl": {"pseudonym": "als pseudoniem, niet de waarde zelf", "year": "alleen het jaar"}}
_CHANNEL = {"en": ("downloaded by a staff member of the school", "sent automatically ({channel})"),
            "nl": ("gedownload door een medewerker van de school", "automatisch verstuurd ({channel})")}
_TEXT = {
    "en": {
        "title": "Which organisations received data about student {key}",
        "intro": "This overview answers an access request under GDPR article 15(1)(c): every time the school "
                 "sent data about this student to another organisation, as recorded in the school's export "
                 "log. It lists the actual recipients, what they received, when, for what purpose and on which "
                 "legal basis.",
        "made": "Made on {today} from the export log ({exports} exports checked; {period}).",
        "period": "the log covers {first} to {last}",
        "period_empty": "the log holds no exports",
        "none": "The log holds no export that included this student.",
        "summary": "In short",
        "summary_line": "{org}: {times} time(s), last on {last}",
        "when": "When", "data": "Data", "purpose": "Purpose", "basis": "Legal basis", "law": "Law",
        "agreement": "Processing agreement", "how": "How", "status": "Status",
        "aborted": "interrupted; the data listed may have been sent in part",
        "at_most": "At most these data: a field is left out for a student it is not permitted for.",
        "unfinished_title": "Exports the log cannot complete",
        "unfinished": "On {when} an export to {org} was interrupted before it was recorded in full. The log does "
                      "not say which students it included: it may have included this student.",
        "unverified": "Warning: the integrity check of the log found {n} problem(s); ask the privacy officer.",
        "verified": "The integrity check of the log found no problems.",
        "no_agreement": "none recorded",
        "no_law": "-",
        "contact": "Questions: contact the school's data protection officer.",
    },
    "nl": {
        "title": "Welke organisaties gegevens over leerling {key} ontvingen",
        "intro": "Dit overzicht beantwoordt een verzoek om inzage volgens artikel 15 lid 1 onder c AVG: elke keer "
                 "dat de school gegevens over deze leerling aan een andere organisatie verstrekte, zoals "
                 "vastgelegd in het exportlogboek van de school. Het noemt de werkelijke ontvangers, wat zij "
                 "kregen, wanneer, waarvoor en op welke grondslag.",
        "made": "Opgesteld op {today} uit het exportlogboek ({exports} exports bekeken; {period}).",
        "period": "het logboek loopt van {first} tot {last}",
        "period_empty": "het logboek bevat geen exports",
        "none": "Het logboek bevat geen export waarin deze leerling voorkwam.",
        "summary": "In het kort",
        "summary_line": "{org}: {times} keer, het laatst op {last}",
        "when": "Wanneer", "data": "Gegevens", "purpose": "Doel", "basis": "Grondslag", "law": "Wet",
        "agreement": "Verwerkersovereenkomst", "how": "Hoe", "status": "Status",
        "aborted": "onderbroken; de genoemde gegevens zijn mogelijk deels verstuurd",
        "at_most": "Hooguit deze gegevens: een gegeven dat voor een leerling niet is toegestaan, wordt weggelaten.",
        "unfinished_title": "Exports die het logboek niet volledig kan vastleggen",
        "unfinished": "Op {when} werd een export naar {org} onderbroken voordat die volledig was vastgelegd. Het "
                      "logboek zegt niet welke leerlingen erin zaten: deze leerling kan erbij zijn geweest.",
        "unverified": "Let op: de controle van het logboek vond {n} probleem/problemen; vraag de "
                      "privacyfunctionaris.",
        "verified": "De controle van het logboek vond geen problemen.",
        "no_agreement": "geen vastgelegd",
        "no_law": "-",
        "contact": "Vragen: neem contact op met de functionaris gegevensbescherming van de school.",
    },
}


def _when(moment: datetime.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "?"


def _field_words(record: ExportRecord, ref: str, lang: str) -> str:
    info = record.field_info.get(ref, {})
    name = ref.split(".", 1)[1] if "." in ref else ref
    extra = []
    transforms = {g.transform for g in record.grants.get(ref, ()) if g.transform}
    extra.extend(_TRANSFORM[lang].get(t, t) for t in sorted(transforms))
    marker = _SENSITIVE[lang].get(str(info.get("sensitivity")))
    if marker:
        extra.append(marker)
    return name + (f" ({'; '.join(extra)})" if extra else "")


def _data_words(record: ExportRecord, fields: tuple[str, ...], lang: str) -> list[str]:
    """Per dataset (by its title): "Leerlinggegevens: roepnaam, leerjaar, id (as a pseudonym...)"."""
    groups: dict[str, list[str]] = {}
    for ref in fields:
        title = record.field_info.get(ref, {}).get("dataset_title") or ref.split(".", 1)[0]
        groups.setdefault(str(title), []).append(_field_words(record, ref, lang))
    return [f"{title}: {', '.join(names)}" for title, names in groups.items()]


_TOPIC = {"en": "{basis}, for {topic}", "nl": "{basis}, voor {topic}"}


def _basis_words(basis: str | None, lang: str) -> str:
    """A grant's basis in words: ``consent(beeldmateriaal)`` names the topic consented to."""
    text = basis or "?"
    words = _BASIS[lang].get(text)
    if words is not None:
        return words
    kind, _, topic = text.partition("(")
    if topic.endswith(")") and kind in _BASIS[lang]:
        return _TOPIC[lang].format(basis=_BASIS[lang][kind], topic=topic[:-1])
    return text


def _entry(record: ExportRecord, lang: str) -> dict[str, Any]:
    t = _TEXT[lang]
    fields = record.fields_sent if record.status == "completed" else (record.fields_sent or record.fields)
    grants = [g for f in fields for g in record.grants.get(f, ())]
    bases = sorted({_basis_words(g.basis, lang) for g in grants})
    laws = sorted({g.law for g in grants if g.law})
    agreements = sorted({g.agreement for g in grants if g.agreement}) or list(record.agreements_in_force)
    manual, automatic = _CHANNEL[lang]
    return {
        "export": record.id, "organisation": record.partner_title or record.partner, "partner": record.partner,
        "when": _when(record.started), "date": record.started.date().isoformat(),
        "data": _data_words(record, fields, lang), "fields": list(fields),
        "purpose": record.purpose_title or record.purpose, "purpose_name": record.purpose,
        "basis": bases, "law": laws or [t["no_law"]], "agreement": agreements or [t["no_agreement"]],
        "how": manual if record.channel == "manual" else automatic.format(channel=record.channel),
        "status": record.status, "note": t["aborted"] if record.status == "aborted" else None,
    }


def build_access(log: ExportLog, key: str | int, *, lang: str = "en",
                 today: datetime.date | None = None) -> dict[str, Any]:
    """The art. 15 answer for the student with this key, as plain JSON-able data."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, not {lang!r}")
    t = _TEXT[lang]
    today = today or datetime.date.today()
    records = sorted(log.student(key), key=lambda r: r.started, reverse=True)
    overview = log.exports(keys=False)
    report = log.verify()
    entries = [_entry(r, lang) for r in records]
    summary: dict[str, dict[str, Any]] = {}
    for e in entries:
        s = summary.setdefault(e["organisation"], {"organisation": e["organisation"], "times": 0, "last": e["date"]})
        s["times"] += 1
        s["last"] = max(s["last"], e["date"])
    if overview:
        period = t["period"].format(first=overview[0].started.date().isoformat(),
                                    last=overview[-1].started.date().isoformat())
    else:
        period = t["period_empty"]
    unfinished = [{"export": r.id, "when": _when(r.started), "organisation": r.partner_title or r.partner,
                   "text": t["unfinished"].format(when=_when(r.started), org=r.partner_title or r.partner)}
                  for r in overview if r.status == "started"]
    tampering = [p for p in report.problems if p.kind != "unfinished"]
    return {
        "student": key, "lang": lang, "title": t["title"].format(key=key), "intro": t["intro"],
        "made": t["made"].format(today=today.isoformat(), exports=len(overview), period=period),
        "verified": report.ok, "integrity": t["verified"] if report.ok else t["unverified"].format(n=len(tampering)),
        "summary": sorted(summary.values(), key=lambda s: s["organisation"]),
        "exports": entries, "unfinished": unfinished, "labels": t,
    }


def render_access(log: ExportLog, key: str | int, fmt: str = "md", *, lang: str = "en",
                  today: datetime.date | None = None) -> str:
    """The art. 15 answer as ``"md"``, ``"json"`` or ``"html"``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    data = build_access(log, key, lang=lang, today=today)
    if fmt == "json":
        return json.dumps({k: v for k, v in data.items() if k != "labels"}, indent=2, ensure_ascii=False) + "\n"
    return _markdown(data) if fmt == "md" else _html(data)


def _md(text: Any) -> str:
    out = str(text)
    for ch in "\\`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", " ")


def _markdown(d: dict[str, Any]) -> str:
    t = d["labels"]
    lines = [f"# {_md(d['title'])}", "", _md(d["intro"]), "", _md(d["made"]) + " " + _md(d["integrity"]), ""]
    if not d["exports"]:
        lines += [_md(t["none"]), ""]
    else:
        lines += [f"## {t['summary']}", ""]
        lines += [f"- {_md(t['summary_line'].format(org=s['organisation'], times=s['times'], last=s['last']))}"
                  for s in d["summary"]]
        lines += ["", _md(t["at_most"]), ""]
        for e in d["exports"]:
            lines += [f"## {_md(e['organisation'])}, {_md(e['when'])}", ""]
            rows = [(t["data"], "; ".join(e["data"])), (t["purpose"], e["purpose"]),
                    (t["basis"], "; ".join(e["basis"])), (t["law"], "; ".join(e["law"])),
                    (t["agreement"], "; ".join(e["agreement"])), (t["how"], e["how"])]
            if e["note"]:
                rows.append((t["status"], e["note"]))
            lines += [f"- **{label}:** {_md(value)}" for label, value in rows]
            lines.append("")
    if d["unfinished"]:
        lines += [f"## {t['unfinished_title']}", ""] + [f"- {_md(u['text'])}" for u in d["unfinished"]] + [""]
    lines += [_md(t["contact"]), ""]
    return "\n".join(lines)


_CSS = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f6f7f9}
main{max-width:52rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;line-height:1.25;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
p{margin:.5rem 0}
.card{background:#fff;border:1px solid #d6dae0;border-radius:8px;padding:.75rem 1rem;margin:.75rem 0}
.card h3{margin:0 0 .5rem;font-size:1.05rem}
dl{display:grid;grid-template-columns:minmax(7rem,max-content) 1fr;gap:.25rem 1rem;margin:0}
dt{font-weight:600;color:#44505c}
dd{margin:0;overflow-wrap:anywhere}
.ok{color:#1a6b35}.warn{color:#8a4b00;font-weight:600}
.note{background:#fff6e5;border-color:#e8b96a}
ul{padding-left:1.25rem}
@media (max-width:560px){dl{grid-template-columns:1fr}dt{margin-top:.35rem}main{padding:.75rem}}
@media print{body{background:#fff}.card{break-inside:avoid}}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html(d: dict[str, Any]) -> str:
    t = d["labels"]
    parts = [f'<!DOCTYPE html><html lang="{d["lang"]}"><head><meta charset="utf-8">'
             '<meta name="viewport" content="width=device-width, initial-scale=1">'
             f"<title>{_e(d['title'])}</title><style>{_CSS}</style></head><body><main>",
             f"<h1>{_e(d['title'])}</h1>", f"<p>{_e(d['intro'])}</p>",
             f"<p>{_e(d['made'])} <span class=\"{'ok' if d['verified'] else 'warn'}\">{_e(d['integrity'])}</span></p>"]
    if not d["exports"]:
        parts.append(f'<p class="card">{_e(t["none"])}</p>')
    else:
        parts.append(f"<h2>{_e(t['summary'])}</h2><ul>")
        parts += [f"<li>{_e(t['summary_line'].format(org=s['organisation'], times=s['times'], last=s['last']))}</li>"
                  for s in d["summary"]]
        parts.append(f"</ul><p>{_e(t['at_most'])}</p>")
        for e in d["exports"]:
            rows = [(t["when"], e["when"]), (t["data"], "; ".join(e["data"])), (t["purpose"], e["purpose"]),
                    (t["basis"], "; ".join(e["basis"])), (t["law"], "; ".join(e["law"])),
                    (t["agreement"], "; ".join(e["agreement"])), (t["how"], e["how"])]
            if e["note"]:
                rows.append((t["status"], e["note"]))
            parts.append(f'<section class="card{" note" if e["note"] else ""}"><h3>{_e(e["organisation"])}</h3><dl>'
                         + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows) + "</dl></section>")
    if d["unfinished"]:
        parts.append(f"<h2>{_e(t['unfinished_title'])}</h2>")
        parts += [f'<p class="card note">{_e(u["text"])}</p>' for u in d["unfinished"]]
    parts.append(f"<p>{_e(t['contact'])}</p></main></body></html>\n")
    return "".join(parts)
