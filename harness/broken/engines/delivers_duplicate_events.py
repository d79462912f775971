"""BROKEN ON PURPOSE: runs the reference engine, then a change-event consumer that trusts
the bus and skips the EventUuid dedupe, so a redelivered rep edit reaches the source twice
(SYNCGATE_CRM_OUTBOX)."""
import datetime
import json
import sys

import requests

from _base import Engine, reference


def iso(ms):
    t = datetime.datetime.fromtimestamp((ms or 0) / 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def consume(engine):
    """Carries every CRM-owned field change a person made to the outbox (no dedupe)."""
    url = engine.env["SYNCGATE_TARGET_URL"].rstrip("/") + "/__syncgate/events"
    objects = engine.bundle["objects"]
    replay, changes = "EARLIEST", []
    while True:
        r = requests.get(url, params={"topic": "/data/ChangeEvents", "replay": replay, "wait": "0", "max": "1000"},
                         timeout=60)
        body = r.json()
        events = body.get("events") or []
        if not events:
            break
        replay = str(body.get("latestReplayId", replay))
        for event in events:
            payload = event.get("payload") or {}
            header = payload.get("ChangeEventHeader") or {}
            spec = objects.get(header.get("entityName"))
            if not spec or "client=" + engine.client_name in (header.get("changeOrigin") or ""):
                continue
            if header.get("changeType", "").startswith("GAP_") or header.get("changeType") == "DELETE":
                continue
            for field, f in spec["fields"].items():
                if f.get("owner") != "crm":
                    continue
                if field in (header.get("nulledFields") or []):
                    value = None
                elif field in (header.get("changedFields") or []):
                    value = payload.get(field)
                else:
                    continue
                for rid in header.get("recordIds") or []:
                    changes.append((header["entityName"], rid, field, value, event))
    ids = {}
    for name in {c[0] for c in changes}:
        wanted = sorted({c[1] for c in changes if c[0] == name})
        ext = objects[name]["external_id"]
        soql = "SELECT Id, %s FROM %s WHERE Id IN (%s)" % (ext, name, ", ".join("'%s'" % i for i in wanted))
        ok, _, _, _, page = engine.call("GET", "query?q=" + reference.urllib.parse.quote(soql, safe="-._~"))
        for row in (page or {}).get("records") or []:
            ids[(name, row["Id"])] = row.get(ext)
    with open(engine.env["SYNCGATE_CRM_OUTBOX"], "a", encoding="utf-8") as out:
        for name, rid, field, value, event in changes:
            if (name, rid) not in ids:
                continue
            header = event["payload"]["ChangeEventHeader"]
            out.write(json.dumps({"object": name, "source_id": ids[(name, rid)], "record_id": rid, "field": field,
                                  "value": value, "replay_id": event.get("replayId"),
                                  "event_uuid": event.get("EventUuid"),
                                  "changed_at": iso(header.get("commitTimestamp"))}) + "\n")


class DeliversDuplicateEvents(Engine):
    def main(self):
        code = super().main()
        if code in (0, 1):
            consume(self)
        return code


if __name__ == "__main__":
    sys.exit(DeliversDuplicateEvents().main())
