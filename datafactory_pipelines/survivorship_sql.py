"""Golden records in SQL: one statement, generated from the field vocabulary and `survivorship.yaml`.

The statement reads a relation of records that carry the lead they belong to (`lead_id`) and their
import's time (`import_time`), and returns one row per lead: every curated column (`CURATED_COLUMNS`)
and, per field chosen by a rule, the record holding the chosen value (`<field>__record`, for provenance
and conflicts). Window functions rank each lead's records oldest to newest (recency: the collected
date, else the import date; then the import time, then the record id); each rule turns a record into
a score `key * RANK_LIMIT + rank`, and the lead's highest score wins (the best key, then the latest).
Plain SQL that DuckDB and PostgreSQL both run (no arg_max, lists or lambdas): a store runs it over the
leads a change touches (a temporary table of their record ids and lead ids) or over all leads.
A record without a collected date is dated by its import's date, CAST to text: PostgreSQL's default
DateStyle (ISO) writes it as DuckDB does (YYYY-MM-DD).
"""

from __future__ import annotations

from datafactory_pipelines.fields import CONTENT_FIELDS, FIELD, SURVIVORSHIP_FIELDS
from datafactory_pipelines.survivorship import survivorship_rules

#: the columns survivorship computes per lead (the rest of a lead row is bookkeeping the store keeps)
CURATED_COLUMNS: list[str] = ["lead_id", *CONTENT_FIELDS]
#: fields chosen by a rule, in vocabulary order: each gets a `<field>__record` column and a provenance entry
RULE_FIELDS: list[str] = list(SURVIVORSHIP_FIELDS)
RECORD_SUFFIX = "__record"
#: the entity a spelling stands for (for `latest_spelled_fully`): the value's key column in records
KEY_OF = {"company": "company_key", "name": "name_key"}
#: for a company, the entity its spelling names across short names, brands, city in brackets, English and
#: branches (standardize/company_entity.py), falling back to company_key for records standardized before it
ENTITY_OF = {"company": "CASE WHEN {t}company_entity <> '' THEN {t}company_entity ELSE {t}company_key END"}
#: how completely a spelling names its entity (0 no trade name, 1 English, 2..4 Chinese without a legal form,
#: 5..7 a Chinese legal name); a record standardized before forms existed counts as a bare Chinese name
FORM_OF = {"company": "(CASE {t}company_form " + " ".join(f"WHEN '{i}' THEN {i}" for i in range(8)) + " ELSE 2 END)"}
LEGAL_FORM = 5  # a Chinese legal name: it says parent (no 分公司) or branch, where a short name fits both
FORM_LIMIT = 1_000_000  # a form outranks any count of records writing a spelling
#: columns taken from the record whose address won (province, city, district)
ADDRESS_PARTS: list[str] = [f.name for f in FIELD.values() if f.of == "address"]
MOBILE_DIGITS = 11  # a one-digit slip is looked for over the first 11 characters (a mainland mobile)
RANK_LIMIT = 10_000_000_000  # more records than this in one lead would mix a rule's key with the rank
RULES = ("latest", "trusted", "most_frequent", "most_complete", "latest_spelled_fully")

_FLAGS = ["name_partial", "email_role"]
_TEXT = sorted({"collected_at", "source", "source_file", "salutation", "mobile", "mobile_alternates",
                *RULE_FIELDS, *KEY_OF.values(), "company_entity", "company_form", *ADDRESS_PARTS})
#: the record columns the statement reads, besides lead_id and import_time
INPUT_COLUMNS: list[str] = ["record_id", "source_row", *_FLAGS, *_TEXT]


def record_column(field: str) -> str:
    return field + RECORD_SUFFIX


def _sql_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


class _Choice:
    """One rule choice: which records may hold the value (`present`), its rule, and its score."""

    def __init__(self, name: str, column: str, present: str, rule: str) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown survivorship rule {rule!r} for {column}")
        self.name, self.column, self.rule = name, column, rule
        self.present = present
        # per-lead lookups some rules need: (name, CTE body over `flagged`, join condition, column it adds)
        self.lookups: list[tuple[str, str, str, str]] = []
        if rule == "most_frequent":  # how many of the lead's records carry the value
            self.lookups.append((f"freq_{name}", f"SELECT lead_id, {column} AS value, count(*) AS n FROM flagged "
                                 f"WHERE {present} GROUP BY lead_id, {column}",
                                 f"freq_{name}.lead_id = flagged.lead_id AND freq_{name}.value = flagged.{column}",
                                 f"freq_{name}.n AS freq_{name}"))
            self.key = f"freq_{name}"
        elif rule == "trusted":
            trust = survivorship_trust()
            default = int(trust.get("default", 50))
            cases = " ".join(f"WHEN {_sql_text(s)} THEN {int(t)}" for s, t in trust.items() if s != "default")
            self.key = f"(CASE source {cases} ELSE {default} END)" if cases else str(default)
        elif rule == "latest_spelled_fully" and column in FORM_OF:
            # the most complete form; among equally complete ones the spelling most records write
            self.lookups.append((f"freq_{name}", f"SELECT lead_id, {column} AS value, count(*) AS n FROM flagged "
                                 f"WHERE {present} GROUP BY lead_id, {column}",
                                 f"freq_{name}.lead_id = flagged.lead_id AND freq_{name}.value = flagged.{column}",
                                 f"freq_{name}.n AS freq_{name}"))
            self.key = f"({FORM_OF[column].format(t='')} * {FORM_LIMIT} + freq_{name})"
        elif rule in ("most_complete", "latest_spelled_fully"):
            self.key = f"length({column})"
        else:
            self.key = ""
        if rule == "latest_spelled_fully":  # the latest value's entity, spelled as fully as any record spells it
            entity = ENTITY_OF.get(column, "{t}" + KEY_OF.get(column, column))  # {t}: the table's alias
            if column in FORM_OF:
                self._company_entity(name, column, entity, FORM_OF[column])
            else:
                self.lookups.append((f"latest_{name}", f"SELECT lead_id, max(CASE WHEN {present} THEN rnk END) AS rnk "
                                     "FROM flagged GROUP BY lead_id", "", ""))
                self.lookups.append((f"latest_key_{name}", f"SELECT f.lead_id, {entity.format(t='f.')} AS entity "
                                     f"FROM flagged f JOIN latest_{name} l ON l.lead_id = f.lead_id AND l.rnk = f.rnk",
                                     f"latest_key_{name}.lead_id = flagged.lead_id",
                                     f"latest_key_{name}.entity AS latest_key_{name}"))
            self.present = f"{present} AND {entity.format(t='')} = latest_key_{name}"

    def _company_entity(self, name: str, column: str, entity: str, form: str) -> None:
        """The company the golden record shows: the latest value that names a company decides which one (a
        bare 重庆分公司 only when none does); whether the parent or one of its branches, the latest value that
        says (a Chinese legal name, or a branch) decides: 光正 after 广州光正机械有限公司上海分公司 is the branch."""
        present = f"{column} <> ''"
        named = f"{present} AND {form.format(t='')} > 0"
        self.lookups.append((f"latest_{name}", f"SELECT lead_id, coalesce(max(CASE WHEN {named} THEN rnk END), "
                             f"max(CASE WHEN {present} THEN rnk END)) AS rnk FROM flagged GROUP BY lead_id", "", ""))
        self.lookups.append((f"latest_base_{name}", f"SELECT f.lead_id, {entity.format(t='f.')} AS entity, "
                             f"split_part({entity.format(t='f.')}, '|', 1) AS base FROM flagged f "
                             f"JOIN latest_{name} l ON l.lead_id = f.lead_id AND l.rnk = f.rnk", "", ""))
        telling = (f"f.{column} <> '' AND split_part({entity.format(t='f.')}, '|', 1) = b.base "
                   f"AND ({form.format(t='f.')} >= {LEGAL_FORM} OR strpos({entity.format(t='f.')}, '|') > 0)")
        self.lookups.append((f"telling_{name}", f"SELECT f.lead_id, max(f.rnk) AS rnk FROM flagged f "
                             f"JOIN latest_base_{name} b ON b.lead_id = f.lead_id WHERE {telling} GROUP BY f.lead_id",
                             "", ""))
        self.lookups.append((f"latest_key_{name}", f"SELECT b.lead_id, coalesce(max({entity.format(t='f.')}), "
                             f"max(b.entity)) AS entity FROM latest_base_{name} b "
                             f"LEFT JOIN telling_{name} t ON t.lead_id = b.lead_id "
                             f"LEFT JOIN flagged f ON f.lead_id = t.lead_id AND f.rnk = t.rnk GROUP BY b.lead_id",
                             f"latest_key_{name}.lead_id = flagged.lead_id",
                             f"latest_key_{name}.entity AS latest_key_{name}"))

    @property
    def score(self) -> str:
        return f"{self.key} * {RANK_LIMIT} + rnk" if self.key else "rnk"


def survivorship_trust() -> dict:
    return survivorship_rules().get("source_trust", {})


def _choices() -> list[_Choice]:
    rules = survivorship_rules()["fields"]
    out = []
    for field in RULE_FIELDS:
        rule = rules.get(field, "latest")
        if field == "name":  # a partial name ("王先生") never outranks a full one
            out.append(_Choice("name", "name", "name <> '' AND NOT name_partial", rule))
        elif field == "mobile":  # a suspected one-digit slip is not chosen
            out.append(_Choice("mobile", "trusted_mobile", "trusted_mobile <> ''", rule))
        elif field == "email":  # a personal mailbox before a role one (sales@, info@)
            out.append(_Choice("email_personal", "email", "email <> '' AND NOT email_role", rule))
            out.append(_Choice("email_any", "email", "email <> ''", rule))
        else:
            out.append(_Choice(field, field, f"{field} <> ''", rule))
    return out


def golden_sql(records: str, switchboards: str) -> str:
    """The statement: `records` is a relation (a table name or a parenthesised subquery, no alias) with
    lead_id, import_time and INPUT_COLUMNS; `switchboards` a relation with a `value` column (landlines
    many names carry). Returns CURATED_COLUMNS and `<field>__record` per rule field, ordered by lead_id."""
    choices = _choices()
    chosen_of = {c.name: c for c in choices}
    text = ",\n    ".join(f"coalesce(r.{c}, '') AS {c}" for c in _TEXT)
    flags = ", ".join(f"coalesce(r.{c}, FALSE) AS {c}" for c in _FLAGS)
    lookups = [lookup for c in choices for lookup in c.lookups]
    lookup_ctes = "".join(f"), {name} AS (\n  {body}\n" for name, body, _, _ in lookups)
    lookup_joins = "".join(f"\n  LEFT JOIN {name} ON {on}" for name, _, on, column in lookups if column)
    lookup_columns = [column for _, _, _, column in lookups if column]
    picks = ",\n    ".join(f"max(CASE WHEN {c.present} THEN {c.score} END) AS pick_{c.name}" for c in choices)

    def at(pick: str, column: str) -> str:  # the value of `column` in the record a pick names
        return f"max(CASE WHEN k.rnk = p.{pick} THEN k.{column} END)"

    chosen = []
    for c in choices:
        chosen.append(f"{at(f'pick_{c.name} % {RANK_LIMIT}', c.column)} AS v_{c.name}")
        chosen.append(f"{at(f'pick_{c.name} % {RANK_LIMIT}', 'record_id')} AS r_{c.name}")
    address = chosen_of.get("address")
    for part in ADDRESS_PARTS if address else ():
        chosen.append(f"{at(f'pick_address % {RANK_LIMIT}', part)} AS v_{part}")
    digits = " + ".join(f"(CASE WHEN substr(a.mobile, {i}, 1) <> substr(b.mobile, {i}, 1) THEN 1 ELSE 0 END)"
                        for i in range(1, MOBILE_DIGITS + 1))
    parts = "1 + length(f.mobile_alternates) - length(replace(f.mobile_alternates, ';', ''))"

    email = "coalesce(c.v_email_personal, c.v_email_any)"
    expressions = {
        "lead_id": "c.lead_id",
        "name": "coalesce(c.v_name, c.partial_name, c.any_name, '')",
        "salutation": "coalesce(c.salutation, '')",
        "mobile": "coalesce(c.v_mobile, '')",
        "mobile_alternates": "coalesce(ma.alternates, '')",
        "mobile_suspected_typos": "coalesce(t.typos, '')",
        "email": f"coalesce({email}, '')",
        "email_alternates": "coalesce(ea.alternates, '')",
        "landline_type": f"CASE WHEN coalesce(c.v_landline, '') = '' THEN '' "
                         f"WHEN c.v_landline IN (SELECT value FROM {switchboards}) THEN 'switchboard' "
                         f"WHEN c.v_landline LIKE '400-%' OR c.v_landline LIKE '800-%' THEN 'service number' "
                         f"ELSE 'landline' END",
        "source": "coalesce(c.source, '')",
        "first_seen": "c.first_seen",
        "last_seen": "c.last_seen",
        "record_count": "c.record_count",
    }
    for field in RULE_FIELDS:
        expressions.setdefault(field, f"coalesce(c.v_{field}, '')")
    for part in ADDRESS_PARTS:
        expressions.setdefault(part, f"coalesce(c.v_{part}, '')" if address else "''")
    missing = [c for c in CURATED_COLUMNS if c not in expressions]
    if missing:
        raise ValueError(f"survivorship does not say how to compute {missing}: add them to survivorship_sql")
    records_of = {f: f"c.r_{f}" for f in RULE_FIELDS}
    records_of["email"] = "coalesce(c.r_email_personal, c.r_email_any)"
    golden_columns = ",\n    ".join([f"{expressions[c]} AS {c}" for c in CURATED_COLUMNS]
                                    + [f"{records_of[f]} AS {record_column(f)}" for f in RULE_FIELDS])
    demoted = "(mobile <> '' AND mobile_place > 1)"  # a mobile two leads share stays primary where most used
    final = []
    for column in CURATED_COLUMNS:
        if column == "mobile":
            final.append(f"CASE WHEN {demoted} THEN '' ELSE mobile END AS mobile")
        elif column == "mobile_alternates":
            final.append(f"CASE WHEN {demoted} THEN mobile || CASE WHEN mobile_alternates = '' THEN '' "
                         f"ELSE ';' || mobile_alternates END ELSE mobile_alternates END AS mobile_alternates")
        else:
            final.append(column)
    final += [record_column(f) for f in RULE_FIELDS]

    def listed(items: list[str]) -> str:
        return "".join(f",\n    {item}" for item in items)

    recency = ("CASE WHEN coalesce(collected_at, '') <> '' THEN collected_at "
               "ELSE CAST(CAST(import_time AS DATE) AS VARCHAR) END")
    # Only `flagged` holds every column of every record (a CTE read several times is materialized);
    # the ranks and the mobile counts read just the columns they need from the records.
    return f"""WITH RECURSIVE ranks AS (  -- each lead's records oldest to newest
  SELECT lead_id, record_id,
         row_number() OVER (PARTITION BY lead_id ORDER BY {recency}, import_time, record_id) AS rnk
  FROM {records} AS r
), mobile_counts AS (
  SELECT lead_id, mobile, count(*) AS n FROM {records} AS r WHERE coalesce(mobile, '') <> '' GROUP BY lead_id, mobile
), typos AS (  -- a mobile one digit away from one the lead's records carry more often
  SELECT DISTINCT a.lead_id, a.mobile FROM mobile_counts a
  JOIN mobile_counts b ON a.lead_id = b.lead_id AND a.mobile <> b.mobile AND a.n < b.n
  WHERE {digits} = 1
), flagged AS (
  SELECT r.lead_id, r.record_id, ranks.rnk, {flags},
    {text},
    {recency.replace("collected_at", "r.collected_at").replace("import_time", "r.import_time")} AS recency,
    CASE WHEN typos.mobile IS NULL THEN coalesce(r.mobile, '') ELSE '' END AS trusted_mobile
  FROM {records} AS r
  JOIN ranks ON ranks.lead_id = r.lead_id AND ranks.record_id = r.record_id
  LEFT JOIN typos ON typos.lead_id = r.lead_id AND typos.mobile = r.mobile
{lookup_ctes}), keyed AS (
  SELECT flagged.*{listed(lookup_columns)}
  FROM flagged{lookup_joins}
), picks AS (
  SELECT lead_id,
    {picks},
    max(CASE WHEN name_partial AND name || salutation <> '' THEN rnk END) AS pick_partial_name,
    max(CASE WHEN name <> '' THEN rnk END) AS pick_any_name,
    max(CASE WHEN salutation <> '' THEN rnk END) AS pick_salutation,
    min(CASE WHEN source <> '' THEN rnk END) AS pick_source,
    max(rnk) AS pick_last,
    count(*) AS record_count
  FROM keyed GROUP BY lead_id
), chosen AS (
  SELECT k.lead_id{listed(chosen)},
    {at('pick_partial_name', 'name || k.salutation')} AS partial_name,
    {at('pick_any_name', 'name')} AS any_name,
    {at('pick_salutation', 'salutation')} AS salutation,
    {at('pick_source', 'source')} AS source,
    max(CASE WHEN k.rnk = 1 THEN k.recency END) AS first_seen,
    {at('pick_last', 'recency')} AS last_seen,
    max(p.record_count) AS record_count
  FROM flagged k JOIN picks p ON p.lead_id = k.lead_id
  GROUP BY k.lead_id
), numbers(i) AS (  -- positions within a cell holding several mobiles
  SELECT 1
  UNION ALL
  SELECT i + 1 FROM numbers WHERE i < (SELECT max({parts.replace('f.', '')}) FROM flagged)
), mobile_values AS (  -- the lead's mobiles, then those its cells held besides: the newest place of each
  SELECT lead_id, value, max(place) AS place FROM (
    SELECT lead_id, trusted_mobile AS value, rnk * 1000 AS place FROM flagged
    UNION ALL
    SELECT f.lead_id, split_part(f.mobile_alternates, ';', n.i) AS value,
           {RANK_LIMIT * 1000} + f.rnk * 1000 + n.i AS place
    FROM flagged f JOIN numbers n ON n.i <= {parts}
    WHERE f.mobile_alternates <> ''
  ) v WHERE value <> '' GROUP BY lead_id, value
), mobile_alternates AS (
  SELECT v.lead_id, string_agg(v.value, ';' ORDER BY v.place DESC) AS alternates
  FROM mobile_values v JOIN chosen c ON c.lead_id = v.lead_id
  WHERE v.value <> coalesce(c.v_mobile, '') GROUP BY v.lead_id
), email_values AS (
  SELECT lead_id, email AS value, max(rnk) AS place FROM flagged WHERE email <> '' GROUP BY lead_id, email
), email_alternates AS (
  SELECT v.lead_id, string_agg(v.value, ';' ORDER BY v.place DESC) AS alternates
  FROM email_values v JOIN chosen c ON c.lead_id = v.lead_id
  WHERE v.value <> coalesce({email}, '') GROUP BY v.lead_id
), typo_list AS (
  SELECT lead_id, string_agg(mobile, ';' ORDER BY mobile) AS typos FROM typos GROUP BY lead_id
), golden AS (
  SELECT {golden_columns}
  FROM chosen c
  LEFT JOIN mobile_alternates ma ON ma.lead_id = c.lead_id
  LEFT JOIN email_alternates ea ON ea.lead_id = c.lead_id
  LEFT JOIN typo_list t ON t.lead_id = c.lead_id
), most_used AS (  -- per primary mobile: the most records any lead carrying it has
  SELECT mobile, max(record_count) AS record_count FROM golden WHERE mobile <> '' GROUP BY mobile
), keepers AS (  -- the lead that keeps it: the most records, then the oldest id
  SELECT g.mobile, min(g.lead_id) AS lead_id FROM golden g
  JOIN most_used m ON m.mobile = g.mobile AND m.record_count = g.record_count GROUP BY g.mobile
), placed AS (
  SELECT golden.*, CASE WHEN keepers.lead_id IS NOT NULL AND keepers.lead_id <> golden.lead_id
                        THEN 2 ELSE 1 END AS mobile_place
  FROM golden LEFT JOIN keepers ON keepers.mobile = golden.mobile
)
SELECT {", ".join(final)}
FROM placed ORDER BY lead_id"""
