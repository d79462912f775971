#!/usr/bin/env python3
"""A reference sync engine for the syncgate engine protocol, version 1.

Written only against docs/engine-protocol.md (stdlib + requests): it reads the resolved
bundle (SYNCGATE_BUNDLE) and the source change files (SYNCGATE_SOURCE), maps every record
as the bundle says, dead-letters what the contract itself rejects without a call, upserts
the rest through sObject Collections by external ID (parents first, relationships by the
parent's external ID), keeps values a person edited in Salesforce after the source's
change, applies the delete policies, honours Retry-After and the daily budget, retries
transient errors with backoff, dead-letters permanent rejections and reports the source
columns it could not map.

Exit 0: everything landed. Exit 1: finished, some records dead-lettered. Exit 3: stopped.

The class is built to be subclassed: harness/broken/engines/ holds engines that override
one behaviour each, to prove the gate catches them.
"""

import csv
import datetime
import email.utils
import json
import math
import os
import random
import re
import sys
import time
import urllib.parse

import requests

BATCH = 200
RETRYABLE_ITEM_CODES = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}
TEXT_TYPES = {"string", "textarea", "email", "phone", "url", "picklist"}
NUMBER_TYPES = {"int", "double", "currency", "percent"}


class Stop(Exception):
    """The engine cannot go on (exit 3)."""


class Rejected(Exception):
    """A record the contract (or the mapping) rejects: dead-lettered without a call."""

    def __init__(self, code, message, cls):
        super().__init__(message)
        self.code, self.message, self.cls = code, message, cls


# --- time -------------------------------------------------------------------------------

def _digits(s, n):
    if len(s) != n or not s.isdigit() or not s.isascii():
        return None
    return int(s)


def parse_date(s):
    if len(s) != 10 or s[4] != "-" or s[7] != "-":
        return None
    y, m, d = _digits(s[0:4], 4), _digits(s[5:7], 2), _digits(s[8:10], 2)
    if y is None or m is None or d is None:
        return None
    try:
        return datetime.date(y, m, d)
    except ValueError:
        return None


def parse_timestamp(s):
    """ISO 8601 with a zone (or a bare date, midnight UTC) -> aware UTC datetime, else None."""
    s = s.strip()
    day = parse_date(s[0:10])
    if day is None:
        return None
    if len(s) == 10:
        return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)
    rest = s[10:]
    if rest[:1] not in ("T", " "):
        return None
    rest = rest[1:]
    if rest.endswith("Z"):
        clock, offset = rest[:-1], 0
    else:
        pos = max(rest.rfind("+"), rest.rfind("-"))
        if pos < 0:
            return None
        clock, off = rest[:pos], rest[pos:]
        digits = off[1:].replace(":", "")
        h, m = _digits(digits[0:2], 2), _digits(digits[2:4], 2)
        if len(digits) != 4 or h is None or m is None or h > 14 or m > 59:
            return None
        offset = (h * 60 + m) * (-1 if off[0] == "-" else 1)
    parts = clock.split(":", 2)
    if len(parts) < 2:
        return None
    h, mi = _digits(parts[0], 2), _digits(parts[1], 2)
    sec, ms = 0, 0
    if len(parts) == 3:
        whole, _, frac = parts[2].partition(".")
        sec = _digits(whole, 2)
        if sec is None or (frac and not frac.isdigit()):
            return None
        ms = int((frac + "000")[:3]) if frac else 0
    if h is None or mi is None or h > 23 or mi > 59 or sec > 60:
        return None
    base = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)
    return base + datetime.timedelta(hours=h, minutes=mi - offset, seconds=sec, milliseconds=ms)


def salesforce_datetime(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03d+0000" % (t.microsecond // 1000)


def soql_datetime(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- source -----------------------------------------------------------------------------

class Record:
    def __init__(self, entity, rid, version, data, changed_at, deleted):
        self.entity, self.id, self.version = entity, rid, version
        self.data, self.changed_at, self.deleted = data, changed_at, deleted


def read_source(directory):
    """Entity -> records in file order, from *.jsonl and *.csv (the harness fixture format)."""
    out = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        stem, ext = os.path.splitext(name)
        if ext == ".jsonl":
            records = []
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    v = json.loads(line)
                    rid = v["id"] if isinstance(v["id"], str) else json.dumps(v["id"])
                    at = v.get("updated_at")
                    records.append(Record(stem, rid, int(v["version"]), v.get("data") or {},
                                          parse_timestamp(at) if at else None,
                                          v.get("deleted") is True))
        elif ext == ".csv":
            records = []
            with open(path, encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    data = {}
                    for k, val in row.items():
                        if k in ("id", "version", "updated_at", "deleted"):
                            continue
                        data[k] = None if val == "" else val
                    at = row.get("updated_at") or ""
                    records.append(Record(stem, row["id"], int(row["version"]), data,
                                          parse_timestamp(at) if at else None,
                                          row.get("deleted") == "true"))
        else:
            continue
        out[stem] = records
    return out


# --- mapping and the contract's rules ---------------------------------------------------

def _number(raw, text):
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        t = text.replace(",", "")
        if "_" in t:
            return None
        try:
            n = float(t)
        except ValueError:
            return None
        return n if math.isfinite(n) else None
    return None


def _text_of(raw):
    if isinstance(raw, str):
        return raw.strip()
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (int, float)):
        return json.dumps(raw)
    return None


def coerce(name, column, field, raw):
    if raw is None:
        return None
    ty = field["type"]

    def fail(expected):
        # Sent as it is, Salesforce's JSON reader would refuse it with this code.
        raise Rejected("JSON_PARSER_ERROR",
                       "%s: cannot read %s from column `%s` as %s" % (name, json.dumps(raw), column, expected),
                       "mapping")

    text = _text_of(raw)
    if ty in TEXT_TYPES:
        if isinstance(raw, str):
            return raw
        if isinstance(raw, (int, float, bool)):
            return text
        fail("text")
    if ty == "reference":
        if isinstance(raw, str) or (isinstance(raw, (int, float)) and not isinstance(raw, bool)):
            return text
        fail("a parent ID")
    if ty == "boolean":
        if isinstance(raw, bool):
            return raw
        t = (text or "").lower()
        if t in ("true", "t", "yes", "y", "1"):
            return True
        if t in ("false", "f", "no", "n", "0"):
            return False
        fail("a boolean")
    if ty == "int":
        n = _number(raw, text)
        if n is None or n != int(n):
            fail("an integer")
        return int(n)
    if ty in NUMBER_TYPES:
        n = _number(raw, text)
        if n is None:
            fail("a number")
        return n
    if ty == "date":
        if text is None:
            fail("a date")
        if parse_date(text):
            return text
        if len(text) > 10:
            t = parse_timestamp(text)
            if t:
                return t.strftime("%Y-%m-%d")
        fail("a date (YYYY-MM-DD)")
    if ty == "datetime":
        if text is None:
            fail("a datetime")
        t = parse_timestamp(text)
        if t and len(text) > 10:
            return salesforce_datetime(t)
        fail("a datetime with a time zone")
    return raw


def _norm(s):
    if s.endswith("__c"):
        s = s[:-3]
    return s.replace("_", "").lower()


def drift_target(spec, column):
    """A same-named custom field the source owns and no column feeds yet, or None."""
    delete = spec["delete"]
    policy_field = delete.get("field")
    for name in sorted(spec["fields"]):
        f = spec["fields"][name]
        if (name.endswith("__c") and f.get("owner", "source") == "source" and not f.get("from")
                and f["type"] != "reference" and name != spec["external_id"]
                and name != policy_field and _norm(name) == _norm(column)):
            return name
    return None


def is_email(s):
    local, sep, domain = s.partition("@")
    return (bool(sep) and bool(local) and "@" not in domain and "." in domain
            and not domain.startswith(".") and not domain.endswith(".")
            and not any(c.isspace() for c in s))


def check_value(name, field, value):
    if value is None:
        return
    ty = field["type"]

    def bad(expected):
        raise Rejected("JSON_PARSER_ERROR", "%s: value %s is not a valid %s" % (name, json.dumps(value), expected), "invalid")

    if ty in TEXT_TYPES:
        if not isinstance(value, str):
            bad(ty)
        if field.get("max_length") is not None and len(value) > field["max_length"]:
            raise Rejected("STRING_TOO_LONG", "%s: data value too large (max length=%d)" % (name, field["max_length"]), "invalid")
        if ty == "email" and not is_email(value):
            raise Rejected("INVALID_EMAIL_ADDRESS", "%s: invalid email address: %s" % (name, value), "invalid")
        if ty == "picklist" and field.get("restricted", True) and value not in (field.get("values") or []):
            raise Rejected("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                           "%s: bad value for restricted picklist field: %s" % (name, value), "invalid")
    elif ty == "boolean":
        if not isinstance(value, bool):
            bad("boolean")
    elif ty == "int":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
        if not ok:
            bad("int")
    elif ty in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad(ty)
    elif ty == "date":
        if not (isinstance(value, str) and parse_date(value)):
            bad("date (YYYY-MM-DD)")
    elif ty == "datetime":
        if not (isinstance(value, str) and len(value) > 10 and parse_timestamp(value)):
            bad("datetime with a time zone")
    elif ty == "reference":
        if not isinstance(value, str):
            bad("record ID")
        if len(value) not in (15, 18):
            raise Rejected("MALFORMED_ID", "%s: id value of incorrect type: %s" % (name, value), "invalid")


def check_write(object_name, spec, values):
    """The contract's own rules on an update (Salesforce's codes), first error only."""
    fields = spec["fields"]
    relationships = {f.get("relationship") for f in fields.values() if f["type"] == "reference"}
    for key in values:
        if key != "attributes" and key not in fields and key not in relationships:
            raise Rejected("INVALID_FIELD", "No such column '%s' on sobject of type %s" % (key, object_name), "invalid")
    for name in sorted(fields):
        f = fields[name]
        if name in values:
            check_value(name, f, values[name])
        rel = f.get("relationship")
        if rel and f["type"] == "reference" and rel in values:
            v = values[rel]
            if v is not None and not isinstance(v, dict):
                raise Rejected("JSON_PARSER_ERROR", "%s: a relationship must be an object" % rel, "invalid")
    missing = []
    for name in sorted(fields):
        f = fields[name]
        if not f.get("required"):
            continue
        rel = f.get("relationship")
        if name in values:
            given = values[name]
        elif rel and rel in values:
            given = values[rel]
        else:
            continue  # absent on an update: the org keeps its value
        if given is None:
            missing.append(name)
    if missing:
        raise Rejected("REQUIRED_FIELD_MISSING", "Required fields are missing: [%s]" % ", ".join(missing), "invalid")
    for rule in spec.get("validation_rules") or []:
        if not rule.get("field") or not rule.get("regex"):
            continue
        v = values.get(rule["field"])
        if isinstance(v, bool) or v is None or v == "":
            continue
        text = v if isinstance(v, str) else json.dumps(v)
        if not re.fullmatch("(?:%s)" % rule["regex"], text):
            raise Rejected("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule["message"], "invalid")


def same_value(a, b):
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b


# --- the engine -------------------------------------------------------------------------

class Engine:
    client_name = "syncgate"
    max_attempts = 8
    max_window_waits = 2
    backoff_base = 0.5   # org seconds
    backoff_cap = 60.0
    # Calls of the daily window left unspent: the last call stays for the org's own people.
    budget_margin = 1
    # Keep the record versions settled (applied, or rejected for good) in SYNCGATE_STATE_DIR,
    # so a later run over the same changes (at-least-once delivery) sends nothing again.
    remembers = True

    def __init__(self, env=os.environ):
        self.env = env
        self.scale = float(env.get("SYNCGATE_TIME_SCALE") or "1")
        with open(env["SYNCGATE_BUNDLE"], encoding="utf-8") as f:
            self.bundle = json.load(f)
        self.source = read_source(env["SYNCGATE_SOURCE"])
        self.run = json.loads(env.get("SYNCGATE_RUN") or "{}")
        self.rng = random.Random(int(self.run.get("seed", 1)))
        self.http = requests.Session()
        self.token = None
        self.instance = None
        self.user_id = None
        self.blocked_until = None
        self.window_waits = 0
        self.dead_letters = 0
        self.unmapped = {}
        self.routed = {}
        self.counters = {"records": 0, "created": 0, "updated": 0, "deleted": 0,
                         "dead_lettered": 0, "retries": 0, "api_calls": 0, "rejected_before_sending": 0}
        self.counters["already_synced"] = 0
        self.counters["already_dead_lettered"] = 0
        self.settled = self.load_settled()
        # The calling limits it is configured with (SYNCGATE_ENGINE_LIMITS): a token bucket
        # on org time, refilled at rate_per_sec, holding at most `burst` tokens. Calls are
        # made one at a time, so at most one is in flight (<= max_concurrent).
        limits = json.loads(env.get("SYNCGATE_ENGINE_LIMITS") or "{}")
        self.rate = float(limits["rate_per_sec"]) if limits.get("rate_per_sec") else None
        self.burst = float(limits.get("burst") or 1)
        self.tokens, self.refilled = self.burst, time.monotonic()
        # Created at once, so "no dead letters" is distinguishable from "no file".
        open(env["SYNCGATE_DEAD_LETTERS"], "a", encoding="utf-8").close()

    # -- waiting ---------------------------------------------------------------------------

    def sleep_org(self, seconds):
        """Sleeps the engine's own timer (backoff), given in org seconds."""
        time.sleep(max(0.0, seconds) / self.scale)

    def backoff(self, attempt):
        cap = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        return cap / 2 + self.rng.random() * cap / 2

    @staticmethod
    def retry_after(headers):
        """Wall seconds to wait from a Retry-After header (seconds or HTTP-date), or None."""
        v = (headers.get("Retry-After") or "").strip()
        if not v:
            return None
        if v.isdigit():
            return float(v)
        when = email.utils.parsedate_to_datetime(v)
        return max(0.0, when.timestamp() - time.time())

    def wait_retry_after(self, seconds):
        time.sleep(seconds)

    def note_limits(self, headers):
        info = headers.get("Sforce-Limit-Info") or ""
        m = re.search(r"api-usage=(\d+)/(\d+)", info)
        if m and int(m.group(1)) + self.budget_margin >= int(m.group(2)):
            reset = headers.get("X-Syncgate-Limit-Reset")
            if reset and reset.isdigit():
                self.blocked_until = time.time() + int(reset)

    def wait_for_window(self, seconds=None):
        self.window_waits += 1
        if self.window_waits > self.max_window_waits:
            raise Stop("the daily API budget stayed exhausted through %d windows" % self.max_window_waits)
        if seconds is None:
            seconds = max(0.0, (self.blocked_until or time.time()) - time.time())
        time.sleep(seconds)
        self.blocked_until = None

    def guard_budget(self):
        if self.blocked_until is not None:
            self.wait_for_window()

    def throttle(self):
        """Waits for a token of the configured bucket (its rate is per org second)."""
        if self.rate is None:
            return
        per_wall_sec = self.rate * self.scale
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.refilled) * per_wall_sec)
        self.refilled = now
        if self.tokens < 1.0:
            # A little over the exact wait: the org's clock counts whole milliseconds.
            time.sleep((1.0 - self.tokens) / per_wall_sec * 1.02 + 0.0005)
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.refilled) * per_wall_sec)
            self.refilled = now
        self.tokens -= 1.0

    # -- HTTP ------------------------------------------------------------------------------

    def login(self):
        url = self.env["SYNCGATE_TARGET_URL"].rstrip("/") + "/services/oauth2/token"
        for attempt in range(1, self.max_attempts + 1):
            try:
                r = self.http.post(url, data={"grant_type": "client_credentials",
                                              "client_id": self.env["SYNCGATE_CLIENT_ID"],
                                              "client_secret": self.env["SYNCGATE_CLIENT_SECRET"]}, timeout=60)
                body = r.json()
            except (requests.RequestException, ValueError):
                self.sleep_org(self.backoff(attempt))
                continue
            if r.status_code != 200:
                raise Stop("sign-in refused: %s" % body.get("error_description", r.status_code))
            self.token = body["access_token"]
            self.instance = body.get("instance_url", self.env["SYNCGATE_TARGET_URL"]).rstrip("/")
            self.user_id = (body.get("id") or "").rstrip("/").rsplit("/", 1)[-1] or None
            return
        raise Stop("sign-in failed")

    def api(self, path):
        return "%s/services/data/v%s/%s" % (self.instance, self.bundle["api_version"], path)

    def headers(self, json_body):
        h = {"Authorization": "Bearer " + self.token, "Accept": "application/json",
             "Sforce-Call-Options": "client=" + self.client_name}
        if json_body:
            h["Content-Type"] = "application/json"
        return h

    def call(self, method, path, body=None):
        """One API call with the retry policy. Returns (ok, status, code, message, data)."""
        attempt, refreshed = 0, False
        while True:
            self.guard_budget()
            self.throttle()
            attempt += 1
            wait = None
            self.counters["api_calls"] += 1
            try:
                r = self.http.request(method, self.api(path), headers=self.headers(body is not None),
                                      data=None if body is None else json.dumps(body), timeout=60)
                self.note_limits(r.headers)
                data = json.loads(r.text) if r.text.strip() else None
            except requests.RequestException as e:
                status, code, message = None, "TRANSPORT_ERROR", str(e)[:200]
                retry = True
            except ValueError:
                # A body that is not JSON: a success cut short, or a page from Salesforce's
                # edge (a 502's HTML); the status says which.
                status = r.status_code
                code, message = "HTTP_%d" % status, "HTTP %d with a body that is not JSON" % status
                retry = status < 300 or self.retryable_answer(status, code)
            else:
                status = r.status_code
                if status < 300:
                    return True, status, None, None, data
                first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
                code = first.get("errorCode") or first.get("statusCode") or "HTTP_%d" % status
                message = first.get("message") or "HTTP %d" % status
                if status == 401 and not refreshed:
                    refreshed = True
                    attempt -= 1
                    self.login()
                    continue
                if status == 403 and code == "REQUEST_LIMIT_EXCEEDED" and "TotalRequests" in message:
                    if self.on_lockout(r.headers):
                        attempt -= 1
                        continue
                    retry = True  # (an engine that treats the lockout as a blip)
                else:
                    retry = self.retryable_answer(status, code)
                    wait = self.retry_after(r.headers)
            if not retry:
                return False, status, code, message, None
            if attempt >= self.max_attempts:
                return False, status, code, "gave up after %d attempts; last error: %s" % (attempt, message), None
            self.counters["retries"] += 1
            if wait is not None and self.honours_retry_after():
                self.wait_retry_after(wait)
            else:
                self.sleep_org(self.backoff(attempt))

    def honours_retry_after(self):
        return True

    def retryable_answer(self, status, code):
        """Whether an error answer is transient (worth another attempt of the request)."""
        return (status in (408, 420, 429) or status >= 500
                or (status == 403 and code == "REQUEST_LIMIT_EXCEEDED")
                or (status == 400 and code in RETRYABLE_ITEM_CODES))

    def retryable_item(self, code, message):
        """Whether a record that failed inside a successful answer may land if sent again
        (`message` is there for engines that judge by it)."""
        return code in RETRYABLE_ITEM_CODES

    def on_lockout(self, headers):
        """The daily budget is spent: wait for the window the org states. True: call again."""
        wait = self.retry_after(headers)
        self.wait_for_window(wait)
        return True

    # -- mapping ---------------------------------------------------------------------------

    def latest(self, records):
        best, order = {}, []
        for r in records:
            if r.id not in best:
                order.append(r.id)
                best[r.id] = r
            elif r.version > best[r.id].version:
                best[r.id] = r
        return [best[i] for i in order]

    def external_id_value(self, spec, record):
        return record.id

    def map_record(self, object_name, spec, record):
        """(payload, unmapped columns, routed columns); raises Rejected on a bad value."""
        payload = {"attributes": {"type": object_name}, spec["external_id"]: self.external_id_value(spec, record)}
        used = set()
        for name in sorted(spec["fields"]):
            f = spec["fields"][name]
            if f.get("owner", "source") == "crm" or name == spec["external_id"] or not f.get("from"):
                continue
            column = f["from"]
            used.add(column)
            if column not in record.data:
                continue
            value = coerce(name, column, f, record.data[column])
            if f["type"] == "reference":
                rel = f.get("relationship") or name
                parent = self.bundle["objects"].get(f.get("to") or "")
                if value is not None and parent:
                    value = {parent["external_id"]: value}
                payload[rel] = value
            else:
                payload[name] = value
        unmapped, routed = set(), {}
        for column, raw in record.data.items():
            if column in used:
                continue
            target = drift_target(spec, column)
            if target:
                payload[target] = coerce(target, column, spec["fields"][target], raw)
                routed[column] = target
            else:
                unmapped.add(column)
        return payload, unmapped, routed

    def report_columns(self, spec, unmapped, routed):
        if unmapped:
            self.unmapped.setdefault(spec["source"], set()).update(unmapped)
        if routed:
            self.routed.setdefault(spec["source"], {}).update(routed)

    def prevalidate(self, object_name, spec, payload):
        check_write(object_name, spec, {k: v for k, v in payload.items() if k != "attributes"})

    def delete_payload(self, spec, payload):
        d = spec["delete"]
        if d["policy"] == "archive":
            payload[d["field"]] = True
        elif d["policy"] == "inactive":
            payload[d["field"]] = d["value"]

    def is_hard_delete(self, spec, record):
        return record.deleted and spec["delete"]["policy"] == "hard_delete"

    def applies_delete_policy(self, record):
        return record.deleted

    # -- what earlier runs settled ---------------------------------------------------------

    def settled_path(self):
        return os.path.join(self.env.get("SYNCGATE_STATE_DIR") or ".", "settled.json")

    def load_settled(self):
        if not self.remembers:
            return {}
        try:
            with open(self.settled_path(), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def save_settled(self):
        if not self.remembers:
            return
        tmp = self.settled_path() + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.settled, f)
        os.replace(tmp, self.settled_path())

    @staticmethod
    def settled_key(object_name, record):
        return "%s|%s|%d|%s" % (object_name, record.id, record.version, "delete" if record.deleted else "upsert")

    def settle(self, object_name, record, how):
        self.settled[self.settled_key(object_name, record)] = how

    # -- dead letters and report -----------------------------------------------------------

    def dead_letter(self, object_name, record, code, message, cls="rejected", attempts=0):
        self.counters["dead_lettered"] += 1
        if cls != "retries_exhausted":
            self.settle(object_name, record, "rejected")
        line = {"object": object_name, "source_id": record.id, "version": record.version,
                "code": code, "message": message, "class": cls, "attempts": attempts}
        with open(self.env["SYNCGATE_DEAD_LETTERS"], "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def write_report(self):
        path = self.env["SYNCGATE_REPORT"]
        old = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                old = json.load(f)
        unmapped = {k: set(v) for k, v in old.get("unmapped_columns", {}).items()}
        for k, v in self.unmapped.items():
            unmapped.setdefault(k, set()).update(v)
        routed = old.get("routed_columns", {})
        for k, v in self.routed.items():
            routed.setdefault(k, {}).update(v)
        counters = old.get("counters", {})
        for k, v in self.counters.items():
            counters[k] = counters.get(k, 0) + v
        report = {"unmapped_columns": {k: sorted(v) for k, v in unmapped.items()},
                  "routed_columns": routed, "counters": counters}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, sort_keys=True)

    # -- conflicts with edits in Salesforce ------------------------------------------------

    def resolve_conflicts(self, object_name, spec, items):
        """Leaves out every field a person changed in Salesforce after the source did."""
        checked = [(r, p) for r, p in items if r.changed_at is not None]
        if not checked:
            return
        since = min(r.changed_at for r, _ in checked)
        fields = sorted(n for n, f in spec["fields"].items()
                        if n != spec["external_id"] and f["type"] != "reference"
                        and any(n in p for _, p in items))
        select = ["Id", spec["external_id"], "LastModifiedDate", "LastModifiedById"] + fields
        where = "LastModifiedDate > %s" % soql_datetime(since)
        if self.user_id:
            where += " AND LastModifiedById != '%s'" % self.user_id.replace("\\", "\\\\").replace("'", "\\'")
        soql = "SELECT %s FROM %s WHERE %s" % (", ".join(select), object_name, where)
        path = "query?q=" + urllib.parse.quote(soql, safe="-._~")
        rows = []
        while True:
            ok, _, _, _, page = self.call("GET", path)
            if not ok:
                return  # without the org's side the write goes ahead as the source says
            rows.extend((page or {}).get("records") or [])
            nxt = (page or {}).get("nextRecordsUrl")
            if not nxt or "/query/" not in nxt:
                break
            path = "query/" + nxt.split("/query/", 1)[1]
        by_ext = {row.get(spec["external_id"]): row for row in rows}
        for record, payload in checked:
            row = by_ext.get(record.id)
            if not row or row.get("LastModifiedById") == self.user_id:
                continue
            modified = parse_timestamp(row.get("LastModifiedDate") or "")
            if modified is None or modified <= record.changed_at:
                continue
            for field in fields:
                if field in payload and field in row and not same_value(payload[field], row[field]):
                    del payload[field]

    # -- sending ---------------------------------------------------------------------------

    def upsert_path(self, object_name, spec):
        return "PATCH", "composite/sobjects/%s/%s" % (object_name, spec["external_id"])

    @staticmethod
    def needs_smaller_batch(code, message):
        """The batch's transaction hit a trigger's governor limit (Apex CPU time)."""
        return code == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY" and (
            "CPU time limit" in message or "LimitException" in message)

    # Batches in a row that must land before a shrunk batch size doubles back.
    grow_after = 2

    def send_adaptively(self, object_name, spec, items):
        """Sends items in batches that halve when the org's triggers hit a governor limit
        and double back after `grow_after` batches that land."""
        size, in_a_row = BATCH, 0
        queue = list(items)
        while queue:
            batch, queue = queue[:size], queue[size:]
            heavy = self.send_batch(object_name, spec, batch)
            if heavy:
                size, in_a_row = max(1, len(batch) // 2), 0
                queue = heavy + queue
                continue
            in_a_row += 1
            if in_a_row >= self.grow_after and size < BATCH:
                size, in_a_row = min(BATCH, size * 2), 0

    def send_batch(self, object_name, spec, batch):
        """Upserts one batch; returns the records too heavy for a batch this size."""
        method, path = self.upsert_path(object_name, spec)
        remaining = list(batch)
        heavy = []
        attempt = 0
        while remaining:
            attempt += 1
            body = {"allOrNone": False, "records": [p for _, p in remaining]}
            ok, status, code, message, data = self.call(method, path, body)
            if not ok:
                cls = "retries_exhausted" if message.startswith("gave up") else "rejected"
                for record, _ in remaining:
                    self.dead_letter(object_name, record, code, message, cls, attempt)
                return heavy
            if not isinstance(data, list) or len(data) != len(remaining):
                data = [{"success": False, "errors": [{"statusCode": "SERVER_UNAVAILABLE", "message": "garbled answer"}]}] * len(remaining)
            retry = []
            codes = {}
            for (record, payload), result in zip(remaining, data):
                if result.get("success"):
                    self.counters["created" if result.get("created") else "updated"] += 1
                    self.settle(object_name, record, "applied")
                    continue
                err = (result.get("errors") or [{}])[0]
                code = err.get("statusCode") or "UNKNOWN_ERROR"
                if len(remaining) > 1 and self.needs_smaller_batch(code, err.get("message", "")):
                    heavy.append((record, payload))
                    continue
                if self.retryable_item(code, err.get("message", "")):
                    retry.append((record, payload))
                    codes[id(record)] = (code, err.get("message", ""))
                else:
                    self.dead_letter(object_name, record, code, err.get("message", ""), "rejected", attempt)
            if retry and attempt >= self.max_attempts:
                for record, _ in retry:
                    code, message = codes.get(id(record), ("UNABLE_TO_LOCK_ROW", ""))
                    cls = "retries_exhausted" if code in RETRYABLE_ITEM_CODES else "rejected"
                    self.dead_letter(object_name, record, code,
                                     "gave up after %d attempts; last error: %s" % (attempt, message), cls, attempt)
                return heavy
            if retry:
                self.counters["retries"] += 1
                self.sleep_org(self.backoff(attempt))
            remaining = retry
        return heavy

    def hard_delete(self, object_name, spec, record):
        path = "sobjects/%s/%s/%s" % (object_name, spec["external_id"], urllib.parse.quote(record.id, safe="-._~"))
        ok, status, code, message, _ = self.call("DELETE", path)
        if ok or status == 404 or code == "NOT_FOUND":
            self.counters["deleted"] += 1
            self.settle(object_name, record, "applied")
            return
        cls = "retries_exhausted" if message.startswith("gave up") else "rejected"
        self.dead_letter(object_name, record, code, message, cls)

    def objects_parent_first(self):
        objects = self.bundle["objects"]
        done, pending = [], sorted(objects)
        while pending:
            rest = []
            for n in pending:
                parents = [f.get("to") for f in objects[n]["fields"].values() if f.get("to")]
                if all(p == n or p in done or p not in objects for p in parents):
                    done.append(n)
                else:
                    rest.append(n)
            if len(rest) == len(pending):  # a reference cycle: name order for the rest
                done.extend(rest)
                rest = []
            pending = rest
        return done

    def sync_object(self, object_name, spec):
        items, deletes = [], []
        for record in self.latest(self.source.get(spec["source"], [])):
            self.counters["records"] += 1
            settled = self.settled.get(self.settled_key(object_name, record))
            if settled == "applied":
                self.counters["already_synced"] += 1
                continue
            if settled == "rejected":
                self.counters["already_dead_lettered"] += 1
                continue
            if self.is_hard_delete(spec, record):
                deletes.append(record)
                continue
            try:
                payload, unmapped, routed = self.map_record(object_name, spec, record)
            except Rejected as e:
                self.dead_letter(object_name, record, e.code, e.message, e.cls)
                continue
            if record.deleted and self.applies_delete_policy(record):
                self.delete_payload(spec, payload)
            self.report_columns(spec, unmapped, routed)
            try:
                self.prevalidate(object_name, spec, payload)
            except Rejected as e:
                self.counters["rejected_before_sending"] += 1
                self.dead_letter(object_name, record, e.code, e.message, e.cls)
                continue
            items.append((record, payload))
        self.resolve_conflicts(object_name, spec, items)
        self.send_adaptively(object_name, spec, items)
        for record in deletes:
            self.hard_delete(object_name, spec, record)

    def main(self):
        try:
            self.login()
            for name in self.objects_parent_first():
                self.sync_object(name, self.bundle["objects"][name])
        except Stop as e:
            self.save_settled()
            self.write_report()
            print("stopped: %s" % e, file=sys.stderr)
            return 3
        self.save_settled()
        self.write_report()
        given_up = self.counters["dead_lettered"] + self.counters["already_dead_lettered"]
        return 1 if given_up else 0


if __name__ == "__main__":
    sys.exit(Engine().main())
