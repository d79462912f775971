"""BROKEN ON PURPOSE: sends a Bulk upload again into the same job when its answer is lost.

It sends each object's records through one Bulk API 2.0 ingest job (create the job, upload
the CSV, close it, poll it, read its results) instead of sObject Collections. An upload
that got no answer (a reset connection, a 5xx) is simply sent again into the same job; but
the org had taken the first one, so every row of it goes in twice and is processed twice.
The records in the org look right (an upsert of the same values changes nothing); the
triggers, workflows and change events of those records ran twice.
"""
import csv
import io

import requests

from _base import Engine, run


def cell(v):
    """A payload value as a Bulk CSV cell (null is #N/A: an empty cell changes nothing)."""
    if v is None or v == "":
        return "#N/A"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def columns(payload):
    out = {}
    for k, v in payload.items():
        if k == "attributes":
            continue
        if isinstance(v, dict) and len(v) == 1:
            (key, inner), = v.items()
            out["%s.%s" % (k, key)] = cell(inner)
        else:
            out[k] = cell(v)
    return out


class ResendsBulkUploads(Engine):
    poll_every = 2.0  # org seconds

    def raw(self, method, path, text=None, content_type=None, accept=None):
        """One request with a text body and a text answer: (status, text), or (None, why).
        Sent again in place after a reset or a 5xx (the bug, for an upload)."""
        why = "no answer"
        for attempt in range(1, self.max_attempts + 1):
            self.guard_budget()
            self.counters["api_calls"] += 1
            h = self.headers(False)
            if content_type:
                h["Content-Type"] = content_type
            if accept:
                h["Accept"] = accept
            try:
                r = self.http.request(method, self.api(path), headers=h,
                                      data=None if text is None else text.encode("utf-8"), timeout=60)
                self.note_limits(r.headers)
            except requests.RequestException as e:
                why = str(e)[:200]
                self.sleep_org(self.backoff(attempt))
                continue
            if r.status_code >= 500:
                why = "HTTP %d" % r.status_code
                self.sleep_org(self.backoff(attempt))
                continue
            return r.status_code, r.text
        return None, why

    def fail_all(self, object_name, items, code, message):
        for record, _ in items:
            self.dead_letter(object_name, record, code, message, "retries_exhausted", 1)

    def send_adaptively(self, object_name, spec, items):
        if not items:
            return
        ext = spec["external_id"]
        rows = [columns(p) for _, p in items]
        header = [ext] + sorted({c for r in rows for c in r} - {ext})
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(c, "") for c in header])
        ok, _, code, message, job = self.call("POST", "jobs/ingest", {
            "object": object_name, "operation": "upsert", "externalIdFieldName": ext,
            "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"})
        if not ok or not isinstance(job, dict) or "id" not in job:
            self.fail_all(object_name, items, code or "BULK_JOB", message or "no job")
            return
        jid = job["id"]
        status, _ = self.raw("PUT", "jobs/ingest/%s/batches" % jid, buf.getvalue(), "text/csv")
        if status != 201:
            self.fail_all(object_name, items, "BULK_UPLOAD", "upload refused: %s" % status)
            return
        self.call("PATCH", "jobs/ingest/%s" % jid, {"state": "UploadComplete"})
        state = "UploadComplete"
        for _ in range(200):
            self.sleep_org(self.poll_every)
            ok, _, _, _, info = self.call("GET", "jobs/ingest/%s" % jid)
            state = (info or {}).get("state") if ok else state
            if state in ("JobComplete", "Failed", "Aborted"):
                break
        if state != "JobComplete":
            self.fail_all(object_name, items, "BULK_JOB", "job %s ended %s" % (jid, state))
            return
        waiting = {}
        for record, payload in items:
            waiting.setdefault(str(payload.get(ext)), []).append(record)
        for kind in ("successfulResults", "failedResults"):
            status, text = self.raw("GET", "jobs/ingest/%s/%s" % (jid, kind), accept="text/csv")
            if status != 200:
                continue
            for row in csv.DictReader(io.StringIO(text)):
                pending = waiting.get(row.get(ext) or "")
                if not pending:
                    continue
                record = pending.pop(0)
                if kind == "successfulResults":
                    self.counters["created" if row.get("sf__Created") == "true" else "updated"] += 1
                    self.settle(object_name, record, "applied")
                else:
                    code, _, message = (row.get("sf__Error") or "UNKNOWN_ERROR:").partition(":")
                    self.dead_letter(object_name, record, code, message.rsplit(":", 1)[0], "rejected", 1)
        for records in waiting.values():
            for record in records:
                self.dead_letter(object_name, record, "BULK_UNPROCESSED", "no result for this row",
                                 "retries_exhausted", 1)


run(ResendsBulkUploads)
