"""Which imports a failed curation belonged to: the live imports with records waiting in the link queue."""

WAITING_IMPORTS = """
    SELECT DISTINCT r.import_id FROM link_queue q JOIN records r ON r.record_id = q.record_id
    JOIN imports i ON i.import_id = r.import_id AND i.undone_at IS NULL
    WHERE q.change = 'added' AND r.retired_by IS NULL ORDER BY r.import_id"""
