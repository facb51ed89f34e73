"""The hostile event corpus (tests/hostile.py): every kind refused, with a reason, writing nothing to the store;
dropped as files into inbox/events and the feed run (as the sensor does), and POSTed to a real server."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from pathlib import Path

from datafactory_pipelines.events.feed import ingest_event_files
from datafactory_pipelines.server import MAX_BODY_BYTES
from tests.event_helpers import Answer, event, request, running_server, store_with_leads
from tests.hostile import hostile_event_lines

TOKEN = "hostile-token"


def _declared_only(base: str, length: int) -> Answer:
    """A body above the limit is answered from its declared length, before a byte of it is read (sending it
    anyway could meet the server's close as a broken pipe: see test_event_ingress)."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.putrequest("POST", "/events")
        conn.putheader("Content-Type", "application/cloudevents+json")
        conn.putheader("Authorization", f"Bearer {TOKEN}")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        answer = conn.getresponse()
        return Answer(answer.status, json.loads(answer.read()), {})
    finally:
        conn.close()


def _fingerprint(store) -> tuple:
    """Everything an event could write: the event table, the leads, the history."""
    return (len(store._query("SELECT * FROM events")), store.leads().to_json(),
            len(store.history()), len(store.conflicts()))


def test_every_hostile_event_file_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    before = _fingerprint(store)
    corpus = hostile_event_lines()
    assert len(corpus) >= 10
    inbox = tmp_path / "inbox" / "events"
    inbox.mkdir(parents=True)
    files = []
    for i, line in enumerate(corpus.values()):
        files.append(inbox / f"hostile-{i:02d}.jsonl")
        files[-1].write_bytes(line + b"\n")
    outcomes = ingest_event_files(store, files, tmp_path / "processed" / "events", tmp_path / "rejected" / "events")
    refused = [kind for kind, outcome in zip(corpus, outcomes, strict=True)
               if outcome.accepted == 0 and len(outcome.errors) == 1 and "line 1" in outcome.errors[0]]
    print(f"{len(refused)} of {len(corpus)} hostile event files refused, nothing written")
    assert refused == list(corpus), set(corpus) - set(refused)
    assert _fingerprint(store) == before
    assert not list(inbox.iterdir())  # none left blocking the inbox
    assert len(list((tmp_path / "rejected" / "events").glob("*.error.txt"))) == len(corpus)

    # and all of them in one file between two good events: the good ones go in, each bad line is named
    good = [json.dumps(event(f"ok-{i}", "lead.owner_assigned", {"mobile": "13800138000", "owner": "王强"}),
                       ensure_ascii=False).encode() for i in (1, 2)]
    mixed = inbox / "mixed.jsonl"
    mixed.write_bytes(b"\n".join([good[0], *corpus.values(), good[1]]) + b"\n")
    (outcome,) = ingest_event_files(store, [mixed], tmp_path / "processed" / "events", tmp_path / "rejected" / "events")
    assert outcome.accepted == 2 and len(outcome.errors) == len(corpus)
    assert [e.split(":")[0].split(" (id")[0] for e in outcome.errors] == [
        f"mixed.jsonl line {n}" for n in range(2, len(corpus) + 2)]


def test_every_hostile_event_posted_is_a_4xx_never_a_500_and_nothing_is_written(tmp_path: Path) -> None:
    store = store_with_leads(tmp_path)
    before = _fingerprint(store)
    corpus = hostile_event_lines()
    answers = {}
    with running_server(store.path, TOKEN) as base:
        for kind, line in corpus.items():
            answers[kind] = request("POST", f"{base}/events", raw=line, token=TOKEN) if len(line) <= MAX_BODY_BYTES \
                else _declared_only(base, len(line))
        health = request("GET", f"{base}/health")
    statuses = {kind: a.status for kind, a in answers.items()}
    assert all(status in (400, 413) for status in statuses.values()), statuses
    assert all(isinstance(a.body, dict) and a.body.get("error") for a in answers.values())
    assert health.status == 200
    print(f"{len(statuses)} of {len(corpus)} hostile requests refused (400/413), nothing written")
    assert _fingerprint(store) == before
