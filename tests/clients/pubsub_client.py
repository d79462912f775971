"""An independent Pub/Sub API client against `syncgate mock serve`, driven by tests/it/pubsub.rs.

Nothing of syncgate's code is used: the gRPC stubs are generated at run time by grpcio-tools
from proto/pubsub_api.proto (the service as Salesforce documents it) into a temporary
directory, payloads are decoded by fastavro with the schema GetSchema returns, and the
header's bitmap fields are decoded here from the schema's field positions, as Salesforce's
"Event Deserialization Considerations" describe. Records are changed over plain REST.

Environment: MOCK_URL (the mock's base URL), MOCK_CLIENT_ID, MOCK_CLIENT_SECRET, and MOCK_CA
(the CA file) when the mock serves TLS. Prints "pubsub: all checks passed" when every check
holds; exits 1 listing the failures otherwise. Needs grpcio, grpcio-tools, fastavro, requests.
"""

import io
import json
import os
import queue
import sys
import tempfile
import urllib.parse

import fastavro
import grpc
import requests
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(ROOT, "proto")
API = "/services/data/v62.0"
TOPIC = "/data/AccountChangeEvent"

failures = []


def check(cond, what):
    if cond:
        print(f"ok: {what}")
    else:
        print(f"FAILED: {what}")
        failures.append(what)


def stubs():
    """Generates the eventbus.v1 messages and stubs into a temporary directory."""
    out = tempfile.mkdtemp(prefix="pubsub-stubs-")
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            os.path.join(PROTO_DIR, "pubsub_api.proto"),
        ]
    )
    if code != 0:
        sys.exit(f"protoc failed on {PROTO_DIR}/pubsub_api.proto ({code})")
    sys.path.insert(0, out)
    import pubsub_api_pb2 as pb2  # noqa: E402
    import pubsub_api_pb2_grpc as pb2_grpc  # noqa: E402

    return pb2, pb2_grpc


pb2, pb2_grpc = stubs()

base = os.environ["MOCK_URL"].rstrip("/")
ca = os.environ.get("MOCK_CA")
http = requests.Session()
# Per request: a session's `verify` loses to REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE when set.
VERIFY = ca or True

# Sign in over OAuth (client credentials), as any integration does.
answer = http.post(
    f"{base}/services/oauth2/token",
    data={
        "grant_type": "client_credentials",
        "client_id": os.environ["MOCK_CLIENT_ID"],
        "client_secret": os.environ["MOCK_CLIENT_SECRET"],
    },
    verify=VERIFY,
).json()
token = answer["access_token"]
instance = answer["instance_url"]
org_id = answer["id"].rstrip("/").split("/")[-2]
auth = [("accesstoken", token), ("instanceurl", instance), ("tenantid", org_id)]

target = urllib.parse.urlparse(base)
address = f"{target.hostname}:{target.port}"
if ca:
    with open(ca, "rb") as f:
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(f.read()))
else:
    channel = grpc.insecure_channel(address)
stub = pb2_grpc.PubSubStub(channel)


def rest(method, path, body=None, client=None):
    headers = {"Authorization": f"Bearer {token}"}
    if client:
        headers["Sforce-Call-Options"] = f"client={client}"
    r = http.request(method, f"{instance}{API}{path}", json=body, headers=headers, verify=VERIFY)
    if r.status_code >= 300:
        sys.exit(f"{method} {path}: HTTP {r.status_code}: {r.text}")
    return r.json() if r.text else None


def trailer(err, key):
    return dict(err.trailing_metadata() or ()).get(key)


# --- GetTopic / GetSchema, and the session check -------------------------------------------
topic = stub.GetTopic(pb2.TopicRequest(topic_name=TOPIC), metadata=auth)
check(topic.can_subscribe and not topic.can_publish, "GetTopic: subscribe-only topic")
check(topic.schema_id != "", "GetTopic names the topic's schema")
check(topic.tenant_guid == org_id, "GetTopic: the topic belongs to this org")
schemas = {}


def schema(schema_id):
    if schema_id not in schemas:
        info = stub.GetSchema(pb2.SchemaRequest(schema_id=schema_id), metadata=auth)
        schemas[schema_id] = fastavro.parse_schema(json.loads(info.schema_json))
    return schemas[schema_id]


parsed = schema(topic.schema_id)
names = [f["name"] for f in parsed["fields"]]
check(names[0] == "ChangeEventHeader", "the schema starts with the ChangeEventHeader")
check("Account_Manager__c" in names, "the schema has the object's fields")

for bad, what in [
    ([("accesstoken", "00Dxx!forged"), ("instanceurl", instance), ("tenantid", org_id)], "a forged token"),
    ([("accesstoken", token), ("instanceurl", instance), ("tenantid", "00D000000000000AAA")], "another org's ID"),
    ([("accesstoken", token)], "missing instanceurl and tenantid"),
]:
    try:
        stub.GetTopic(pb2.TopicRequest(topic_name=TOPIC), metadata=bad)
        check(False, f"{what} is refused")
    except grpc.RpcError as e:
        check(
            e.code() == grpc.StatusCode.UNAUTHENTICATED
            and trailer(e, "error-code") == "sfdc.platform.eventbus.grpc.service.auth.error",
            f"{what} is refused: UNAUTHENTICATED with Salesforce's auth error code",
        )

try:
    stub.GetTopic(pb2.TopicRequest(topic_name="/data/NoSuchChangeEvent"), metadata=auth)
    check(False, "an unknown topic is refused")
except grpc.RpcError as e:
    check(e.code() == grpc.StatusCode.NOT_FOUND, "an unknown topic is NOT_FOUND")


# --- Subscribe -----------------------------------------------------------------------------
def decode_bitmap(fields, bitmap):
    """Field names from a bitmap field: bit N of the first (hex) entry is schema field N."""
    out = []
    for entry in bitmap:
        if "-" in entry:
            continue  # compound fields: none in this bundle
        value = int(entry, 16)
        out += [fields[i] for i in range(len(fields)) if value >> i & 1]
    return out


def decode(event):
    s = schema(event.event.schema_id)
    record = fastavro.schemaless_reader(io.BytesIO(event.event.payload), s)
    fields = [f["name"] for f in s["fields"]]
    header = record["ChangeEventHeader"]
    for key in ("changedFields", "nulledFields", "diffFields"):
        header[key] = decode_bitmap(fields, header[key])
    return record


class Subscription:
    """One Subscribe call; requests go through a queue, so more can be asked for later."""

    def __init__(self, topic_name, preset, replay_id=b"", num_requested=100):
        self.requests = queue.Queue()
        self.requests.put(
            pb2.FetchRequest(
                topic_name=topic_name,
                replay_preset=preset,
                replay_id=replay_id,
                num_requested=num_requested,
            )
        )
        self.topic = topic_name
        self.call = stub.Subscribe(self._requests(), metadata=auth, timeout=30)

    def _requests(self):
        while True:
            item = self.requests.get()
            if item is None:
                return
            yield item

    def more(self, n):
        self.requests.put(pb2.FetchRequest(topic_name=self.topic, num_requested=n))

    def next(self):
        return next(self.call)

    def until_caught_up(self):
        """Events up to the first empty batch (the keepalive); returns (events, latest)."""
        events = []
        while True:
            batch = self.next()
            events += list(batch.events)
            if not batch.events:
                return events, batch.latest_replay_id

    def close(self):
        self.requests.put(None)
        self.call.cancel()


# Where the bus is before the changes: LATEST answers at once with an empty batch.
sub = Subscription(TOPIC, pb2.ReplayPreset.LATEST)
first = sub.next()
sub.close()
check(len(first.events) == 0, "LATEST: nothing old, an empty batch at once")
check(len(first.latest_replay_id) > 0, "the empty batch carries the replay ID to resume from")
mark = first.latest_replay_id

# Changes over REST: an account created, a rep's edit (another client), a second account.
a = rest("POST", "/sobjects/Account", {
    "Name": "Alpine Outfitters", "NW_Customer_Id__c": "PS-1", "NumberOfEmployees": 42,
    "AnnualRevenue": 1250000.5, "Customer_Since__c": "2019-04-01",
})["id"]
rest("PATCH", f"/sobjects/Account/{a}", {"Account_Manager__c": "Priya Nair", "Phone": None}, client="crm-ui")
b = rest("POST", "/sobjects/Account", {"Name": "Basecamp Supply", "NW_Customer_Id__c": "PS-2"})["id"]

sub = Subscription(TOPIC, pb2.ReplayPreset.CUSTOM, replay_id=mark)
events, latest = sub.until_caught_up()
sub.close()
records = [decode(e) for e in events]
headers = [r["ChangeEventHeader"] for r in records]
check([h["changeType"] for h in headers] == ["CREATE", "UPDATE", "CREATE"],
      f"from the mark: create, update, create (got {[h['changeType'] for h in headers]})")
check([h["recordIds"] for h in headers] == [[a], [a], [b]], "recordIds name the changed records")
check(all(h["entityName"] == "Account" for h in headers), "entityName is Account")
create, update = records[0], records[1]
check(create["Name"] == "Alpine Outfitters" and create["NumberOfEmployees"] == 42.0,
      "the create carries the new values")
check(create["AnnualRevenue"] == 1250000.5, "a currency value arrives as a double")
check(str(create["Customer_Since__c"]) == "2019-04-01", "a date arrives as an Avro date")
check(set(["Name", "NW_Customer_Id__c", "NumberOfEmployees"]) <= set(headers[0]["changedFields"]),
      f"the create's changedFields bitmap names its fields (got {headers[0]['changedFields']})")
check(update["Account_Manager__c"] == "Priya Nair", "the update carries the new value")
check(update["Name"] is None, "fields the update did not touch are null")
check(headers[1]["changedFields"] == ["Account_Manager__c"],
      f"the update's changedFields bitmap decodes to Account_Manager__c (got {headers[1]['changedFields']})")
check("client=crm-ui" in headers[1]["changeOrigin"], "changeOrigin names the client that wrote")
check(headers[1]["sequenceNumber"] == 1 and headers[1]["transactionKey"] != "",
      "sequenceNumber and transactionKey are set")
check(isinstance(headers[1]["commitTimestamp"], int) and headers[1]["commitTimestamp"] > 0,
      "commitTimestamp is epoch milliseconds")
check(headers[0]["commitNumber"] < headers[1]["commitNumber"] < headers[2]["commitNumber"],
      "commitNumber grows with each transaction")
check(headers[1]["commitUser"].startswith("005"), "commitUser is a user ID")
check(len({e.event.id for e in events}) == 3, "each event has its own UUID (ProducerEvent.id)")
check(latest == events[-1].replay_id, "the caught-up batch's latest_replay_id is the last event's")

# Resume after the update: only the later event comes.
sub = Subscription(TOPIC, pb2.ReplayPreset.CUSTOM, replay_id=events[1].replay_id)
later, _ = sub.until_caught_up()
sub.close()
check([decode(e)["ChangeEventHeader"]["recordIds"] for e in later] == [[b]],
      "resuming from the update's replay ID brings only the later create")

# Flow control: one event per request, and no more until asked.
sub = Subscription(TOPIC, pb2.ReplayPreset.CUSTOM, replay_id=mark, num_requested=1)
one = sub.next()
check(len(one.events) == 1 and one.pending_num_requested == 0,
      "num_requested=1: one event, nothing pending")
sub.more(2)
two = []
while len(two) < 2:
    two += list(sub.next().events)
sub.close()
check([e.replay_id for e in [one.events[0]] + two] == [e.replay_id for e in events],
      "asking for two more brings the next two, in order")

# EARLIEST on the all-objects channel: every retained event, each with its object's schema.
sub = Subscription("/data/ChangeEvents", pb2.ReplayPreset.EARLIEST)
every, _ = sub.until_caught_up()
sub.close()
check(len(every) >= 3 and all(decode(e)["ChangeEventHeader"]["entityName"] for e in every),
      "/data/ChangeEvents from EARLIEST decodes every event with its schema")

# Replay IDs that are not the bus's are refused with Salesforce's error codes.
for replay_id, code, what in [
    (b"\x01", "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted", "a corrupted replay ID"),
    (b"\x7f" * 8, "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.invalid", "a replay ID never issued"),
]:
    sub = Subscription(TOPIC, pb2.ReplayPreset.CUSTOM, replay_id=replay_id)
    try:
        sub.next()
        check(False, f"{what} is refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT and trailer(e, "error-code") == code,
              f"{what} is refused: INVALID_ARGUMENT, {code}")
    sub.close()

if failures:
    print(f"pubsub: {len(failures)} checks failed: {failures}")
    sys.exit(1)
print("pubsub: all checks passed")
