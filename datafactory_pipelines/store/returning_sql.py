"""Records that come back: a record of a file imported again after its import was undone, or a record of
an undone import put back by taking its restore back.

"Undo, then import the same file again" must give the same leads with the same ids, as if the undo never
happened. A new record is the same row of the same content as a record of an undone import (same file
content SHA-256, sheet and row); the lead that record first made, if it is retired now, is the id the new
record's cluster takes back.
"""

from __future__ import annotations

#: keys: wanted_records (record_id). record_id -> the retired lead its earlier copy first belonged to.
RETURNING_LEADS = """
    SELECT n.record_id, arg_max(o.first_lead_id, o.record_id) AS lead_id
    FROM wanted_records w
    JOIN records n ON n.record_id = w.record_id
    JOIN imports ni ON ni.import_id = n.import_id
    JOIN imports oi ON oi.content_sha256 = ni.content_sha256 AND oi.undone_at IS NOT NULL
                   AND oi.import_id <> ni.import_id
    JOIN records o ON o.import_id = oi.import_id AND o.source_row = n.source_row
                  AND coalesce(o.sheet, '') = coalesce(n.sheet, '') AND o.first_lead_id IS NOT NULL
    JOIN leads l ON l.lead_id = o.first_lead_id AND l.status = 'retired'
    GROUP BY n.record_id
    UNION ALL
    -- a record put back into linkage itself (an undone restore): the retired lead it first made
    SELECT n.record_id, n.first_lead_id AS lead_id
    FROM wanted_records w
    JOIN records n ON n.record_id = w.record_id
    JOIN leads l ON l.lead_id = n.first_lead_id AND l.status = 'retired'"""
