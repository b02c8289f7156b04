"""The dashboard: the register and the real traffic of the export log on one page.

One self-contained HTML file (no scripts, fonts or images from elsewhere; no script at all) that a
privacy officer reads at a glance, also on a phone: what needs attention (records the log cannot
verify, unfinished exports, agreements that expire within 90 days), per partner what it may
receive and what it actually received (last export, students, fields), flows that are permitted
but never used in the log's period (a minimisation hint), and exports per staff member
(``channel="manual"``). ``build_dashboard`` gives the same as plain JSON-able data.
"""

from __future__ import annotations

import datetime
import html
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from .log import ExportLog

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = ["EXPIRING_DAYS", "build_dashboard", "render_dashboard"]

#: an agreement that ends within this many days needs attention
EXPIRING_DAYS = 90
_MARK = {"special": "art. 9", "criminal": "art. 10", "national_id": "BSN"}


def _permitted(policy: Policy, partner: str) -> dict[str, dict[str, str | None]]:
    """purpose -> field -> transform (None: as is) that some permit lets ``partner`` receive."""
    model = policy.model
    out: dict[str, dict[str, str | None]] = {}
    for rule in model.rules:
        if rule.effect != "permit" or not rule.partners.matches(partner):
            continue
        for purpose in sorted(u for u in model.purposes if rule.purposes.matches(u)):
            fields = out.setdefault(purpose, {})
            for grant in rule.grants:
                fields.setdefault(grant.ref, grant.transform)
    return {u: out[u] for u in sorted(out)}


def _agreement_rows(policy: Policy, partner: str, today: datetime.date) -> list[dict[str, Any]]:
    rows = []
    for a in policy.model.partners[partner].agreements:
        start, end = a.window.start, a.window.end
        days = (end - today).days if end else None
        if start and today < start:
            status = "not started"
        elif days is not None and days < 0:
            status = "expired"
        elif days is not None and days <= EXPIRING_DAYS:
            status = "expiring"
        else:
            status = "active"
        rows.append({"reference": a.reference, "from": start.isoformat() if start else None,
                     "until": end.isoformat() if end else None, "days_left": days, "status": status})
    return rows


def build_dashboard(policy: Policy, log: ExportLog, *, today: datetime.date | None = None) -> dict[str, Any]:
    """Everything the dashboard shows, as JSON-able data."""
    today = today or datetime.datetime.now(policy.zone).date()
    model = policy.model
    records = log.exports()
    report = log.verify()
    by_partner: dict[str, list[Any]] = defaultdict(list)
    for r in records:
        by_partner[r.partner].append(r)
    partners = []
    hints = []
    for name in sorted(set(model.partners) | set(by_partner)):
        info = model.partners.get(name)
        permitted = _permitted(policy, name) if info is not None else {}
        sent = [r for r in by_partner.get(name, []) if r.status != "started"]
        received: dict[str, set[str]] = defaultdict(set)
        for r in sent:
            received[r.purpose].update(r.fields_sent)
        students = {k for r in sent for k in r.keys}
        last = max((r.started for r in sent), default=None)
        never: list[dict[str, Any]] = []
        for purpose, fields in permitted.items():
            unused = [f for f in fields if f not in received.get(purpose, set())]
            if unused:
                entry = {"partner": name, "purpose": purpose, "fields": unused,
                         "whole_flow": len(unused) == len(fields)}
                never.append(entry)
                hints.append(entry)
        outside = {u: sorted(fs - set(permitted.get(u, {}))) for u, fs in received.items()
                   if fs - set(permitted.get(u, {}))}
        partners.append({
            "name": name, "title": info.title if info else None, "declared": info is not None,
            "agreements": _agreement_rows(policy, name, today) if info else [],
            "may_receive": {u: [{"field": f, "transform": t,
                                 "mark": _MARK.get(model.catalogue.fields[f].sensitivity)} for f, t in fs.items()]
                            for u, fs in permitted.items()},
            "exports": len(sent), "unfinished": sum(1 for r in by_partner.get(name, []) if r.status == "started"),
            "last_export": last.isoformat().replace("+00:00", "Z") if last else None,
            "students": len(students),
            "received": {u: sorted(fs) for u, fs in sorted(received.items())},
            "never_sent": never,
            "outside_policy": outside,  # sent under an earlier policy version, no longer permitted
        })
    expiring = [{"partner": p["name"], "title": p["title"], **a} for p in partners for a in p["agreements"]
                if a["status"] == "expiring"]
    staff: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.channel != "manual":
            continue
        s = staff.setdefault(r.actor, {"actor": r.actor, "exports": 0, "students": set(), "partners": set(),
                                       "last": r.started})
        s["exports"] += 1
        s["students"].update(r.keys)
        s["partners"].add(r.partner)
        s["last"] = max(s["last"], r.started)
    staff_rows = [{"actor": s["actor"], "exports": s["exports"], "students": len(s["students"]),
                   "partners": sorted(s["partners"]), "last": s["last"].isoformat().replace("+00:00", "Z")}
                  for s in sorted(staff.values(), key=lambda s: (-s["exports"], s["actor"]))]
    unfinished = [{"id": r.id, "partner": r.partner, "actor": r.actor, "channel": r.channel,
                   "started": r.started.isoformat().replace("+00:00", "Z")} for r in records if r.status == "started"]
    controller = getattr(model, "controller", None)
    return {
        "title": "Export dashboard",
        "school": getattr(controller, "name", None),
        "today": today.isoformat(), "policy_version": policy.version, "log": log.store.description,
        "period": {"from": records[0].started.date().isoformat() if records else None,
                   "until": records[-1].started.date().isoformat() if records else None},
        "totals": {"exports": len(records), "students": len({k for r in records for k in r.keys}),
                   "partners_reached": sum(1 for p in partners if p["exports"]), "partners": len(partners)},
        "verified": report.ok, "head": report.head,
        "problems": [p.to_dict() for p in report.problems if p.kind != "unfinished"],
        "unfinished": unfinished, "expiring": expiring, "partners": partners, "never_used": hints,
        "staff": staff_rows,
        "recent": [{"id": r.id, "started": r.started.isoformat().replace("+00:00", "Z"), "partner": r.partner,
                    "purpose": r.purpose, "actor": r.actor, "channel": r.channel, "status": r.status,
                    "students": r.students} for r in reversed(records[-15:])],
    }


def render_dashboard(policy: Policy, log: ExportLog, *, today: datetime.date | None = None) -> str:
    """The dashboard as one self-contained HTML page."""
    return _html(build_dashboard(policy, log, today=today))


# ---------------------------------------------------------------------------
# HTML

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f4f5f7}
main{max-width:80rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.25rem 0}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
h3{font-size:1rem;margin:0 0 .35rem;overflow-wrap:anywhere}
p{margin:.35rem 0}
.sub{color:#4a5561;overflow-wrap:anywhere}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:.6rem;margin:1rem 0}
.tile{background:#fff;border:1px solid #d6dae0;border-radius:8px;padding:.6rem .8rem}
.tile b{display:block;font-size:1.6rem;line-height:1.2}
.tile.bad{border-color:#c0392b;background:#fdecea}.tile.warn{border-color:#d68910;background:#fef5e7}
.tile.good{border-color:#1e8449;background:#eafaf1}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(22rem,1fr));gap:.75rem}
.card{background:#fff;border:1px solid #d6dae0;border-radius:8px;padding:.75rem .9rem;min-width:0}
.card.attn{border-left:5px solid #d68910}.card.bad{border-left:5px solid #c0392b}
ul{margin:.25rem 0;padding-left:1.15rem}li{overflow-wrap:anywhere}
.label{font-weight:600;color:#44505c}
.badge{display:inline-block;border-radius:4px;padding:0 .35rem;font-size:.8rem;font-weight:600;margin-left:.25rem}
.b-special{background:#fadbd8;color:#922b21}.b-ok{background:#d5f5e3;color:#145a32}
.b-warn{background:#fdebd0;color:#7e5109}.b-bad{background:#fadbd8;color:#922b21}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d6dae0}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e5e8ec;vertical-align:top;overflow-wrap:anywhere}
th{background:#eef0f3;font-weight:600}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;overflow-wrap:anywhere}
.empty{color:#4a5561;font-style:italic}
@media (max-width:640px){
  main{padding:.6rem}.cards{grid-template-columns:1fr}
  table,thead,tbody,tr,th,td{display:block;width:100%}
  thead{position:absolute;left:-9999px}
  tr{border-bottom:2px solid #d6dae0;padding:.3rem 0}
  td{border:0;padding:.15rem .5rem}
  td::before{content:attr(data-label) ": ";font-weight:600;color:#44505c}
}
@media print{body{background:#fff}.card,.tile{break-inside:avoid}}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _tile(label: str, value: Any, tone: str = "") -> str:
    return f'<div class="tile {tone}"><b>{_e(value)}</b>{_e(label)}</div>'


def _field(f: dict[str, Any]) -> str:
    name = f["field"]
    extra = f" as {f['transform']}" if f["transform"] else ""
    mark = f'<span class="badge b-special">{_e(f["mark"])}</span>' if f["mark"] else ""
    return f"{_e(name)}{_e(extra)}{mark}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """A table whose cells carry their header, so that on a phone each row becomes a labelled card."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td data-label="{_e(h)}">{c}</td>' for h, c in zip(headers, r, strict=True))
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _partner_card(p: dict[str, Any]) -> str:
    badges = []
    for a in p["agreements"]:
        tone = {"active": "b-ok", "expiring": "b-warn"}.get(a["status"], "b-bad")
        left = f", {a['days_left']} days left" if a["status"] in ("expiring", "active") and a["days_left"] is not None \
            else ""
        badges.append(f'<li>{_e(a["reference"])} <span class="badge {tone}">{_e(a["status"])}{_e(left)}</span></li>')
    attn = " attn" if p["never_sent"] or any(a["status"] == "expiring" for a in p["agreements"]) else ""
    if p["unfinished"] or p["outside_policy"] or not p["declared"]:
        attn = " bad"
    parts = [f'<section class="card{attn}"><h3>{_e(p["title"] or p["name"])} '
             f'<span class="sub mono">{_e(p["name"])}</span></h3>']
    if not p["declared"]:
        parts.append("<p><b>Not a partner of the current policy</b>, but the log has exports to it.</p>")
    if badges:
        parts.append(f'<p class="label">Agreements</p><ul>{"".join(badges)}</ul>')
    if p["may_receive"]:
        items = "".join(f"<li><b>{_e(u)}</b>: {', '.join(_field(f) for f in fs)}</li>"
                        for u, fs in p["may_receive"].items())
        parts.append(f'<p class="label">May receive</p><ul>{items}</ul>')
    else:
        parts.append('<p class="label">May receive</p><p class="empty">nothing (no permit)</p>')
    if p["exports"]:
        received = "".join(f"<li><b>{_e(u)}</b>: {_e(', '.join(fs) or 'no field (nobody qualified)')}</li>"
                           for u, fs in p["received"].items())
        parts.append(f'<p class="label">Actually received</p><p>{p["exports"]} export(s), last on '
                     f'{_e(p["last_export"][:16].replace("T", " "))} UTC, {p["students"]} distinct student(s)</p>'
                     f"<ul>{received}</ul>")
    else:
        parts.append('<p class="label">Actually received</p><p class="empty">nothing in the log\'s period</p>')
    if p["unfinished"]:
        parts.append(f"<p><b>{p['unfinished']} unfinished export(s)</b>: which students they sent is unknown.</p>")
    if p["outside_policy"]:
        items = "".join(f"<li>{_e(u)}: {_e(', '.join(fs))}</li>" for u, fs in p["outside_policy"].items())
        parts.append(f"<p><b>Received what the current policy no longer permits</b></p><ul>{items}</ul>")
    if p["never_sent"]:
        items = "".join(f"<li>{_e(n['purpose'])}: "
                        f"{'the whole flow' if n['whole_flow'] else ''}{' (' if n['whole_flow'] else ''}"
                        f"{_e(', '.join(n['fields']))}{')' if n['whole_flow'] else ''}</li>" for n in p["never_sent"])
        parts.append(f'<p class="label">Permitted, never sent (minimise?)</p><ul>{items}</ul>')
    parts.append("</section>")
    return "".join(parts)


def _html(d: dict[str, Any]) -> str:
    t = d["totals"]
    period = (f"{d['period']['from']} to {d['period']['until']}" if d["period"]["from"] else "no exports yet")
    tiles = [
        _tile("log integrity" if d["verified"] else "unverifiable record(s)",
              "verified" if d["verified"] else len(d["problems"]), "good" if d["verified"] else "bad"),
        _tile("unfinished export(s)", len(d["unfinished"]), "bad" if d["unfinished"] else "good"),
        _tile(f"agreement(s) ending within {EXPIRING_DAYS} days", len(d["expiring"]),
              "warn" if d["expiring"] else "good"),
        _tile("permitted flow(s) never used", len(d["never_used"]), "warn" if d["never_used"] else "good"),
        _tile("exports", t["exports"]),
        _tile("distinct students sent", t["students"]),
        _tile(f"of {t['partners']} partners received data", t["partners_reached"]),
        _tile("staff member(s) exporting by hand", len(d["staff"])),
    ]
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(d['title'])}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(d['title'])}{(' - ' + _e(d['school'])) if d['school'] else ''}</h1>",
        f'<p class="sub">On {_e(d["today"])}; exports from {_e(period)}; policy {_e(d["policy_version"])}; '
        f'log {_e(d["log"])}</p>',
        f'<div class="tiles">{"".join(tiles)}</div>',
        "<h2>Needs attention</h2>",
    ]
    attention = []
    for p in d["problems"]:
        attention.append(f'<section class="card bad"><h3>Unverifiable: {_e(p["kind"])}</h3>'
                         f'<p class="mono">{_e(p["id"])}</p><p>{_e(p["message"])}</p></section>')
    for u in d["unfinished"]:
        attention.append(f'<section class="card bad"><h3>Unfinished export to {_e(u["partner"])}</h3>'
                         f'<p>Started {_e(u["started"][:16].replace("T", " "))} UTC by {_e(u["actor"])} '
                         f'({_e(u["channel"])}) and never completed: which students it sent is not recorded.</p>'
                         f'<p class="mono">{_e(u["id"])}</p></section>')
    for a in d["expiring"]:
        attention.append(f'<section class="card attn"><h3>Agreement {_e(a["reference"])} ends in {a["days_left"]} '
                         f'days</h3><p>{_e(a["title"] or a["partner"])}: valid until {_e(a["until"])}. Renew it or '
                         "stop the flows that depend on it.</p></section>")
    parts.append(f'<div class="cards">{"".join(attention)}</div>' if attention
                 else '<p class="empty">Nothing: the log verifies, every export finished, no agreement ends within '
                      f'{EXPIRING_DAYS} days.</p>')
    parts.append("<h2>Partners: may receive and actually received</h2>")
    parts.append(f'<div class="cards">{"".join(_partner_card(p) for p in d["partners"])}</div>')
    parts.append("<h2>Permitted but never used (a minimisation hint)</h2>")
    if d["never_used"]:
        rows = [[_e(n["partner"]), _e(n["purpose"]), "the whole flow" if n["whole_flow"] else "some fields",
                 _e(", ".join(n["fields"]))] for n in d["never_used"]]
        parts.append(_table(["Partner", "Purpose", "Unused", "Fields never sent"], rows))
    else:
        parts.append('<p class="empty">Every permitted field went out at least once in the log\'s period.</p>')
    parts.append("<h2>Exports by staff members (manual downloads)</h2>")
    if d["staff"]:
        rows = [[_e(s["actor"]), str(s["exports"]), str(s["students"]), _e(", ".join(s["partners"])),
                 _e(s["last"][:16].replace("T", " ")) + " UTC"] for s in d["staff"]]
        parts.append(_table(["Staff member", "Exports", "Students", "Partners", "Last"], rows))
    else:
        parts.append('<p class="empty">No manual exports in the log.</p>')
    parts.append("<h2>Latest exports</h2>")
    if d["recent"]:
        rows = [[_e(r["started"][:16].replace("T", " ")) + " UTC", _e(r["partner"]), _e(r["purpose"]),
                 _e(r["actor"]) + f' <span class="sub">({_e(r["channel"])})</span>', _e(r["status"]),
                 str(r["students"])] for r in d["recent"]]
        parts.append(_table(["Started", "Partner", "Purpose", "By", "Status", "Students"], rows))
    else:
        parts.append('<p class="empty">No exports yet.</p>')
    parts.append(f'<p class="sub">Chain head <span class="mono">{_e(d["head"] or "-")}</span>: note it elsewhere '
                 "(e.g. in the minutes) to prove later that no newer record was cut off.</p>")
    parts.append("</main></body></html>\n")
    return "".join(parts)
