"""Golden records: one curated lead per cluster, each field chosen by a survivorship rule.

Rules here: the most recent non-empty valid value wins (recency = collected date, then import
time); the first source is kept as the lead's source; other distinct mobiles and emails are kept
as alternates so nothing valid is lost.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from datafactory_pipelines.store.schema import LEAD_COLUMNS

LATEST_FIELDS = ["landline", "wechat", "qq", "douyin", "kuaishou", "company", "title"]
ADDRESS_FIELDS = ["address", "province", "city", "district"]
CONTENT_FIELDS = [c for c in LEAD_COLUMNS if c not in ("lead_id", "status", "merged_into", "created_at",
                                                        "updated_at", "content_hash")]


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
    return values.groupby("lead_id", sort=False)["value"].agg(";".join)


def golden_records(records: pd.DataFrame, switchboards: set[str] | frozenset[str] = frozenset()) -> pd.DataFrame:
    """records (with lead_id) -> one row per lead_id with the surviving values.

    switchboards: landlines that many different names carry; a lead's landline among them is
    typed 'switchboard' (it reaches the company, not the person).
    """
    recency = records["collected_at"].fillna("").where(
        records["collected_at"].fillna("") != "", records["import_time"].astype(str).str[:10]
    )
    ordered = records.assign(_recency=recency).sort_values(["lead_id", "_recency", "import_time", "record_id"])
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
    for field in LATEST_FIELDS:
        out[field] = _latest_non_empty(ordered, field).reindex(out.index)
    typos = suspected_mobile_typos(ordered)
    trusted = ~pd.MultiIndex.from_arrays([ordered["lead_id"], ordered["mobile"]]).isin(typos.index)
    out["mobile"] = _latest_non_empty(ordered, "mobile", pd.Series(trusted, index=ordered.index)).reindex(out.index)
    out["mobile_suspected_typos"] = typos.reset_index().groupby("lead_id")["mobile"].agg(";".join).reindex(out.index)
    personal = ~ordered["email_role"].astype(bool)
    out["email"] = _latest_non_empty(ordered, "email", personal).reindex(out.index).fillna(
        _latest_non_empty(ordered, "email").reindex(out.index))
    out["mobile_alternates"] = _alternates(ordered.assign(mobile=ordered["mobile"].where(trusted, "")), "mobile",
                                           "mobile_alternates", out["mobile"].fillna("")).reindex(out.index)
    out["email_alternates"] = _alternates(ordered, "email", None, out["email"].fillna("")).reindex(out.index)

    has_address = ordered["address"].fillna("") != ""
    address_rows = ordered[has_address].groupby("lead_id", sort=False).tail(1).set_index("lead_id")
    for field in ADDRESS_FIELDS:
        out[field] = address_rows[field].reindex(out.index)
    landline = out["landline"].fillna("")
    out["landline_type"] = np.where(landline == "", "", np.where(landline.isin(switchboards), "switchboard", "landline"))
    first_source = ordered[ordered["source"].fillna("") != ""].groupby("lead_id", sort=False)["source"].first()
    out["source"] = first_source.reindex(out.index)
    grouped = ordered.groupby("lead_id", sort=False)["_recency"]
    out["first_seen"] = grouped.min().reindex(out.index)
    out["last_seen"] = grouped.max().reindex(out.index)
    out["record_count"] = ordered.groupby("lead_id", sort=False).size().reindex(out.index).astype("int64")
    out = out.fillna("").reset_index()
    _one_lead_per_primary_mobile(out)
    out["content_hash"] = _content_hash(out)
    return out


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


def _content_hash(frame: pd.DataFrame) -> pd.Series:
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
