"""Golden records: one curated lead per cluster, each field chosen by a survivorship rule.

The rules live in `survivorship.yaml` (per field: latest, trusted, most_frequent, most_complete,
latest_spelled_fully). Recency is the collected date, then the import time. The first source is
kept as the lead's source; other distinct mobiles and emails are kept as alternates so nothing
valid is lost; every chosen value records which record, source, date and rule chose it.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
import yaml

from datafactory_pipelines.fields import CONTENT_FIELDS, LEAD_COLUMNS

RULE_FIELDS = ["landline", "wechat", "qq", "douyin", "kuaishou", "company", "title", "owner"]
KEY_OF = {"company": "company_key", "name": "name_key"}  # the entity a spelling stands for
ADDRESS_FIELDS = ["address", "province", "city", "district"]


@cache
def survivorship_rules() -> dict:
    text = resources.files("datafactory_pipelines").joinpath("survivorship.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def choose(ordered: pd.DataFrame, column: str, rule: str, mask: pd.Series | None = None) -> pd.DataFrame:
    """Per lead, the surviving value of `column` under `rule`, with the record that holds it.

    `ordered` is sorted oldest to newest within each lead. Returns value and record_id, indexed by lead_id.
    """
    present = ordered[column].fillna("") != ""
    if mask is not None:
        present &= mask.to_numpy()
    rows = ordered.loc[present, ["lead_id", "record_id", column, "_rank"]].rename(columns={column: "value"})
    if rule == "trusted":
        trust = survivorship_rules().get("source_trust", {})
        source = ordered.loc[present, "source"].fillna("")
        rows["_key"] = source.map(trust).fillna(trust.get("default", 50)).to_numpy()
        rows = rows.sort_values(["lead_id", "_key", "_rank"])
    elif rule == "most_frequent":
        rows["_key"] = rows.groupby(["lead_id", "value"])["value"].transform("size")
        rows = rows.sort_values(["lead_id", "_key", "_rank"])
    elif rule == "most_complete":
        rows["_key"] = rows["value"].str.len()
        rows = rows.sort_values(["lead_id", "_key", "_rank"])
    elif rule == "latest_spelled_fully":
        key = ordered.loc[present, KEY_OF.get(column, column)].fillna("").to_numpy()
        latest_key = pd.Series(key, index=rows.index).groupby(rows["lead_id"]).transform("last")
        rows = rows[key == latest_key.to_numpy()]
        rows = rows.assign(_key=rows["value"].str.len()).sort_values(["lead_id", "_key", "_rank"])
    elif rule != "latest":
        raise ValueError(f"unknown survivorship rule {rule!r} for {column}")
    return rows.groupby("lead_id", sort=False)[["value", "record_id"]].last()


def join_by(keys: pd.Series, values: pd.Series, separator: str) -> pd.Series:
    """Values joined per key, in their order (a stable sort by key; much faster than groupby.agg(join))."""
    if keys.empty:
        return pd.Series(dtype=object)
    order = np.argsort(keys.to_numpy(), kind="stable")
    k, v = keys.to_numpy()[order], values.to_numpy()[order]
    cuts = np.flatnonzero(k[1:] != k[:-1]) + 1
    return pd.Series([separator.join(group) for group in np.split(v, cuts)], index=k[np.r_[0, cuts]])


def _latest_non_empty(ordered: pd.DataFrame, column: str, mask: pd.Series | None = None) -> pd.Series:
    values = ordered[column].where(ordered[column].fillna("") != "")
    if mask is not None:
        values = values.where(mask)
    return values.groupby(ordered["lead_id"], sort=False).last()


def _alternates(ordered: pd.DataFrame, column: str, extra_column: str | None, primary: pd.Series) -> pd.Series:
    """Other distinct values of a contact field, newest first, ';'-joined."""
    parts = [ordered[["lead_id", column]].rename(columns={column: "value"})]
    if extra_column:
        extra = ordered[["lead_id", extra_column]].rename(columns={extra_column: "value"})
        extra = extra[extra["value"].fillna("") != ""]
        extra = extra.assign(value=extra["value"].str.split(";")).explode("value")
        parts.append(extra)
    values = pd.concat(parts, ignore_index=True)
    values = values[values["value"].fillna("") != ""]
    values = values.iloc[::-1].drop_duplicates()
    values = values[values["value"].to_numpy() != primary.reindex(values["lead_id"]).to_numpy()]
    return join_by(values["lead_id"], values["value"], ";")


def golden_records(records: pd.DataFrame, switchboards: set[str] | frozenset[str] = frozenset()) -> pd.DataFrame:
    """records (with lead_id) -> one row per lead_id with the surviving values.

    switchboards: landlines that many different names carry; a lead's landline among them is
    typed 'switchboard' (it reaches the company, not the person).
    """
    if records.empty:
        return pd.DataFrame(columns=[c for c in LEAD_COLUMNS if c not in ("status", "merged_into", "created_at",
                                                                          "updated_at")])
    recency = records["collected_at"].fillna("").where(
        records["collected_at"].fillna("") != "", records["import_time"].astype(str).str[:10]
    )
    ordered = records.assign(_recency=recency).sort_values(["lead_id", "_recency", "import_time", "record_id"])
    ordered["_rank"] = np.arange(len(ordered))
    rules = survivorship_rules()["fields"]
    chosen: dict[str, pd.DataFrame] = {}
    lead_ids = ordered["lead_id"].drop_duplicates()
    out = pd.DataFrame(index=pd.Index(lead_ids, name="lead_id"))

    full_name = _latest_non_empty(ordered, "name", ~ordered["name_partial"].astype(bool))
    any_name = _latest_non_empty(ordered, "name")
    partial_display = (ordered["name"].fillna("") + ordered["salutation"].fillna("")).where(
        ordered["name_partial"].astype(bool))
    partial_display = partial_display.where(partial_display != "").groupby(ordered["lead_id"], sort=False).last()
    out["name"] = full_name.reindex(out.index).fillna(partial_display.reindex(out.index)).fillna(
        any_name.reindex(out.index))
    out["salutation"] = _latest_non_empty(ordered, "salutation").reindex(out.index)
    for field in RULE_FIELDS:
        chosen[field] = choose(ordered, field, rules.get(field, "latest"))
        out[field] = chosen[field]["value"].reindex(out.index)
    typos = suspected_mobile_typos(ordered)
    trusted = ~pd.MultiIndex.from_arrays([ordered["lead_id"], ordered["mobile"]]).isin(typos.index)
    chosen["mobile"] = choose(ordered, "mobile", rules.get("mobile", "latest"), pd.Series(trusted, index=ordered.index))
    out["mobile"] = chosen["mobile"]["value"].reindex(out.index)
    out["mobile_suspected_typos"] = typos.reset_index().groupby("lead_id")["mobile"].agg(";".join).reindex(out.index)
    personal = ~ordered["email_role"].astype(bool)
    chosen["email"] = choose(ordered, "email", rules.get("email", "latest"), personal)
    chosen["email"] = chosen["email"].combine_first(choose(ordered, "email", rules.get("email", "latest")))
    out["email"] = chosen["email"]["value"].reindex(out.index)
    out["mobile_alternates"] = _alternates(ordered.assign(mobile=ordered["mobile"].where(trusted, "")), "mobile",
                                           "mobile_alternates", out["mobile"].fillna("")).reindex(out.index)
    out["email_alternates"] = _alternates(ordered, "email", None, out["email"].fillna("")).reindex(out.index)

    chosen["address"] = choose(ordered, "address", rules.get("address", "latest"))
    address_rows = ordered.set_index("record_id").reindex(chosen["address"]["record_id"])
    for field in ADDRESS_FIELDS:
        out[field] = pd.Series(address_rows[field].to_numpy(), index=chosen["address"].index).reindex(out.index)
    landline = out["landline"].fillna("")
    out["landline_type"] = np.where(landline == "", "", np.where(landline.isin(switchboards), "switchboard", "landline"))
    first_source = ordered[ordered["source"].fillna("") != ""].groupby("lead_id", sort=False)["source"].first()
    out["source"] = first_source.reindex(out.index)
    grouped = ordered.groupby("lead_id", sort=False)["_recency"]
    out["first_seen"] = grouped.first().reindex(out.index)  # records are in date order within a lead
    out["last_seen"] = grouped.last().reindex(out.index)
    out["record_count"] = ordered.groupby("lead_id", sort=False).size().reindex(out.index).astype("int64")
    chosen["name"] = choose(ordered, "name", rules.get("name", "latest"), ~ordered["name_partial"].astype(bool))
    out["provenance"] = _provenance(ordered, chosen, rules).reindex(out.index)
    out = out.fillna("").reset_index()
    _one_lead_per_primary_mobile(out)
    out["content_hash"] = content_hash(out)
    return out


def _provenance(ordered: pd.DataFrame, chosen: dict[str, pd.DataFrame], rules: dict) -> pd.Series:
    """Per lead, JSON: for every golden field, the record, source file, source, date and rule that chose it."""
    facts = ordered.set_index("record_id")[["source_file", "source_row", "source", "_recency"]]
    parts = []
    for field, picked in chosen.items():
        info = facts.reindex(picked["record_id"].to_numpy())
        parts.append(pd.DataFrame({
            "lead_id": picked.index, "field": field, "record": picked["record_id"].to_numpy(),
            "file": info["source_file"].to_numpy(), "row": info["source_row"].to_numpy(),
            "source": info["source"].to_numpy(), "at": info["_recency"].to_numpy(),
            "rule": rules.get(field, "latest"),
        }))
    table = pd.concat(parts, ignore_index=True)
    table["entry"] = [
        f'"{d}": ' + json.dumps({"record": int(r), "file": f, "row": int(w), "source": s or "", "at": a, "rule": u},
                                ensure_ascii=False)
        for d, r, f, w, s, a, u in zip(table["field"], table["record"], table["file"], table["row"], table["source"],
                                       table["at"], table["rule"], strict=True)
    ]
    return "{" + join_by(table["lead_id"], table["entry"], ", ") + "}"


def _one_lead_per_primary_mobile(leads: pd.DataFrame) -> None:
    """A mobile two people share (a family phone) stays primary only where it is most used; for the
    other leads it becomes an alternate, so a primary mobile always names one lead."""
    has = leads["mobile"] != ""
    ranked = leads[has].sort_values(["mobile", "record_count", "lead_id"], ascending=[True, False, True])
    demote = ranked.index[ranked.duplicated("mobile")]
    if len(demote):
        alternates = leads.loc[demote, "mobile_alternates"]
        leads.loc[demote, "mobile_alternates"] = leads.loc[demote, "mobile"].where(
            alternates == "", leads.loc[demote, "mobile"] + ";" + alternates)
        leads.loc[demote, "mobile"] = ""


def suspected_mobile_typos(records: pd.DataFrame) -> pd.Series:
    """Mobiles of a lead that differ in one digit from a mobile the lead's records carry more often.

    A one-digit slip still forms a possible number, so no single cell shows it; across a lead's
    records it does. Returns the count of the suspect, indexed by (lead_id, mobile).
    """
    counts = records[records["mobile"].fillna("") != ""].groupby(["lead_id", "mobile"]).size()
    several = counts[counts.groupby(level=0).transform("size") > 1].reset_index(name="n")
    if several.empty:
        return pd.Series(dtype="int64", index=pd.MultiIndex.from_arrays([[], []], names=["lead_id", "mobile"]))
    pairs = several.merge(several, on="lead_id", suffixes=("", "_other"))
    pairs = pairs[pairs["mobile"] != pairs["mobile_other"]]
    a = np.array(pairs["mobile"].tolist(), dtype="U11").view(np.int32).reshape(-1, 11)
    b = np.array(pairs["mobile_other"].tolist(), dtype="U11").view(np.int32).reshape(-1, 11)
    one_digit = (a != b).sum(axis=1) == 1
    suspect = pairs[one_digit & (pairs["n"] < pairs["n_other"]).to_numpy()]
    return suspect.drop_duplicates(["lead_id", "mobile"]).set_index(["lead_id", "mobile"])["n"]


def content_hash(frame: pd.DataFrame) -> pd.Series:
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    joined = frame[CONTENT_FIELDS].astype(str).agg("\x1f".join, axis=1)
    return pd.Series([hashlib.sha1(s.encode("utf-8")).hexdigest() for s in joined], index=frame.index)


def assign_lead_ids(clusters: pd.DataFrame, previous: pd.Series, next_number: int) -> tuple[pd.DataFrame, dict]:
    """Give each cluster a stable lead id.

    clusters: record_id, cluster_id.  previous: record_id -> lead_id (NaN for new records).
    A cluster keeps the lead id of the records it holds; when it holds several leads (a merge)
    the oldest id survives and the others are recorded as merged into it. A lead whose records
    split keeps its id in the cluster holding most of them.
    Returns (record_id, lead_id) and {retired lead id: surviving lead id}.
    """
    frame = clusters.copy()
    frame["previous"] = previous.reindex(frame["record_id"]).to_numpy()
    owned = frame.dropna(subset=["previous"]).groupby(["previous", "cluster_id"]).size().reset_index(name="n")
    owned = owned.sort_values(["previous", "n", "cluster_id"], ascending=[True, False, True])
    owner = owned.drop_duplicates("previous")  # each old lead id goes to the cluster holding most of it
    keep = owner.sort_values("previous").drop_duplicates("cluster_id")  # oldest id per cluster survives
    cluster_lead = dict(zip(keep["cluster_id"], keep["previous"], strict=True))
    merged = {
        old: cluster_lead[c] for old, c in zip(owner["previous"], owner["cluster_id"], strict=True)
        if cluster_lead[c] != old
    }
    new_clusters = np.sort(frame.loc[~frame["cluster_id"].isin(cluster_lead), "cluster_id"].unique())
    for offset, cluster in enumerate(new_clusters):
        cluster_lead[cluster] = format_lead_id(next_number + offset)
    frame["lead_id"] = frame["cluster_id"].map(cluster_lead)
    return frame[["record_id", "lead_id"]], merged


def format_lead_id(number: int) -> str:
    return f"L{number:08d}"


def lead_number(lead_id: str) -> int:
    return int(lead_id[1:])
