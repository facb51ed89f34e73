"""Hostile spreadsheets built in the test, small on disk."""

from __future__ import annotations

import zipfile
from pathlib import Path

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    '</Types>')
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/></Relationships>')
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="线索" sheetId="1" r:id="rId1"/></sheets></workbook>')
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'sharedStrings" Target="sharedStrings.xml"/></Relationships>')
SHEET = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
    '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="s"><v>3</v></c></row>'
    '</sheetData></worksheet>')


def write_cell_bomb(path: Path, cell_bytes: int, prolog: str = "") -> Path:
    """A valid .xlsx whose one shared string (cell A2) is `cell_bytes` long; highly compressible."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", SHEET)
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            part.write((prolog + '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                        "<si><t>姓名</t></si><si><t>手机</t></si><si><t>").encode())
            block = b"A" * (1 << 20)
            left = cell_bytes
            while left > 0:
                part.write(block[:min(left, len(block))])
                left -= len(block)
            part.write(b"</t></si><si><t>13800138000</t></si></sst>")
    return path


def write_entity_xlsx(path: Path, doctype: str) -> Path:
    """A small .xlsx whose sharedStrings part declares a DTD (XXE or billion laughs)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", SHEET)
        archive.writestr("xl/sharedStrings.xml", '<?xml version="1.0"?>' + doctype +
                         '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                         "<si><t>姓名</t></si><si><t>手机</t></si><si><t>&x;</t></si>"
                         "<si><t>13800138000</t></si></sst>")
    return path


# -- hostile event lines (inbox/events/*.jsonl and POST /events) -------------------------------------------
def _event_line(data: dict, **envelope: object) -> bytes:
    import json

    return json.dumps({"specversion": "1.0", "id": "hostile", "source": "https://app.example.com",
                       "type": "lead.profile_updated", "data": data, **envelope}, ensure_ascii=False).encode()


def hostile_event_lines() -> dict[str, bytes]:
    """One line each (no newline) that must be refused with a reason, each naming the lead 13800138000 so
    that, were it accepted, it would change something. Small to build; the huge line is 2 MiB."""
    who = {"mobile": "13800138000"}
    return {
        "array 5,000 deep": b"[" * 5000 + b"]" * 5000,
        "object 600 deep": b'{"a":' * 600 + b"1" + b"}" * 600,
        "event whose data is 1,000 deep": _event_line({**who, "title": "x"})[:-1] + b', "x": '
        + b"[" * 1000 + b"]" * 1000 + b"}",
        "invalid UTF-8": _event_line({**who, "title": "CTO"}).replace(b"CTO", b"C\xff\xfeO"),
        "not JSON": b'{"specversion": "1.0", "id": "h", ',
        "line of 2 MiB": _event_line({**who, "title": "x" * (2 << 20)}),
        "title of 1 MiB": _event_line({**who, "title": "A" * (1 << 20)}),
        "address of 10,000 characters": _event_line({**who, "address": "上海" * 5000}),
        "unknown data key of 100 KiB": _event_line({**who, "title": "CTO", "note": "n" * 100_000}),
        "extension attribute that is an object": _event_line({**who, "title": "CTO"}, traceparent={"a": {"b": 1}}),
        "time that is not a time": _event_line({**who, "title": "CTO"}, time="yesterday at noon"),
        "NaN in the event": _event_line({**who, "title": "CTO"})[:-1] + b', "score": NaN}',
        "lone surrogate escape": _event_line({**who, "title": "CTO"}).replace(b"CTO", b"\\ud800"),
        "owner of invisible characters only": _event_line(
            {**who, "owner": "\u202e\u200b\u2066"}, type="lead.owner_assigned"),
        "source of 600 characters": _event_line({**who, "title": "CTO"}, source="s" * 600),
        "1,001 events on one line": b"[" + b",".join([_event_line({**who, "title": "CTO"})] * 1001) + b"]",
    }
