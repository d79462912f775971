"""simple-salesforce's own logins against `syncgate mock serve --tls --connected-app FILE`.

Two phases, driven by tests/it/oauth.rs:

* `prepare DIR` writes an RSA key and its self-signed certificate (the connected app's JWT
  certificate), a second key nobody registered, and the connected-app file `app.toml`;
* `check DIR` (with MOCK_URL and REQUESTS_CA_BUNDLE) signs in with simple-salesforce's
  client-credentials, username-password and JWT bearer logins, and checks that forged,
  expired and wrongly signed assertions, wrong secrets and never-issued refresh tokens are
  refused with Salesforce's error JSON.

simple-salesforce always builds `https://{domain}.salesforce.com/services/oauth2/token`; the
requests session given to it routes `*.salesforce.com` to the mock (the client is otherwise
unmodified). Needs simple-salesforce, PyJWT and cryptography.
"""

import base64
import datetime
import os
import sys
import urllib.parse

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from simple_salesforce import Salesforce, SalesforceAuthenticationFailed

CLIENT_ID = "3MVG9mockConnectedApp"
CLIENT_SECRET = "connected-app-secret"
USERNAME = "integration@partner.example"
PASSWORD = "hunter2-for-tests"
REFRESH = "5Aep861mockRefreshTokenFromAWebServerFlow"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def prepare(d):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syncgate JWT test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    with open(os.path.join(d, "jwt.crt"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(d, "jwt.key"), "wb") as f:
        f.write(key_pem(key))
    with open(os.path.join(d, "other.key"), "wb") as f:
        f.write(key_pem(other))
    with open(os.path.join(d, "app.toml"), "w") as f:
        f.write(
            f'client_id = "{CLIENT_ID}"\n'
            f'client_secret = "{CLIENT_SECRET}"\n'
            'certificate = "jwt.crt"\n\n'
            f'[[users]]\nusername = "{USERNAME}"\npassword = "{PASSWORD}"\n\n'
            f'[[refresh_tokens]]\ntoken = "{REFRESH}"\nusername = "{USERNAME}"\n'
        )


class ToMock(requests.adapters.HTTPAdapter):
    """Sends requests for *.salesforce.com to the mock."""

    def __init__(self, base):
        super().__init__()
        self.base = urllib.parse.urlsplit(base)

    def send(self, request, **kw):
        url = urllib.parse.urlsplit(request.url)
        if url.hostname and url.hostname.endswith(".salesforce.com"):
            request.url = urllib.parse.urlunsplit(
                (self.base.scheme, self.base.netloc, url.path, url.query, url.fragment)
            )
        return super().send(request, **kw)


def routed_session(base):
    s = requests.Session()
    s.mount("https://", ToMock(base))
    return s


def refused(fn, code, description=None):
    try:
        fn()
    except SalesforceAuthenticationFailed as e:
        # simple-salesforce keeps the error code; the description is checked on the raw
        # answer below.
        return e.code == code, f"{e.code}"
    return False, "signed in"


def assertion(key, **claims):
    exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=3)
    payload = {
        "iss": CLIENT_ID,
        "sub": USERNAME,
        "aud": "https://login.salesforce.com",
        "exp": int(exp.timestamp()),
    }
    payload.update(claims)
    return jwt.encode(payload, key, algorithm="RS256")


def run(d):
    base = os.environ["MOCK_URL"]
    token_url = base + "/services/oauth2/token"
    session = routed_session(base)
    key = open(os.path.join(d, "jwt.key")).read()
    other = open(os.path.join(d, "other.key")).read()

    # Client credentials: simple-salesforce sends HTTP Basic.
    sf = Salesforce(
        consumer_key=CLIENT_ID,
        consumer_secret=CLIENT_SECRET,
        domain="mockorg.my",
        session=session,
    )
    check(sf.query("SELECT Id FROM Account")["totalSize"] == 0, "client credentials (Basic) signs in")
    ok, got = refused(
        lambda: Salesforce(consumer_key=CLIENT_ID, consumer_secret="wrong", domain="mockorg.my", session=session),
        "invalid_client",
        "invalid client credentials",
    )
    check(ok, f"a wrong client secret is invalid_client ({got})")
    ok, got = refused(
        lambda: Salesforce(consumer_key="nobody", consumer_secret="x", domain="mockorg.my", session=session),
        "invalid_client_id",
        "client identifier invalid",
    )
    check(ok, f"an unknown client is invalid_client_id ({got})")
    r = requests.post(token_url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, "wrong"))
    check(r.status_code == 400 and r.json() == {"error": "invalid_client", "error_description": "invalid client credentials"},
          f"Basic with a wrong secret: Salesforce's error JSON ({r.text})")
    r = requests.post(token_url, data={"grant_type": "client_credentials"}, auth=("nobody", "x"))
    check(r.status_code == 400 and r.json() == {"error": "invalid_client_id", "error_description": "client identifier invalid"},
          f"Basic with an unknown client: Salesforce's error JSON ({r.text})")
    r = requests.post(
        token_url,
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    check(r.status_code == 200 and "access_token" in r.json(), "client credentials in form fields")

    # Username-password: needs the user, the password and the client secret.
    sf = Salesforce(
        username=USERNAME,
        password=PASSWORD,
        consumer_key=CLIENT_ID,
        consumer_secret=CLIENT_SECRET,
        domain="login",
        session=session,
    )
    check(sf.query("SELECT Id FROM Contact")["totalSize"] == 0, "username-password signs in")
    ok, got = refused(
        lambda: Salesforce(username=USERNAME, password="wrong", consumer_key=CLIENT_ID,
                           consumer_secret=CLIENT_SECRET, domain="login", session=session),
        "invalid_grant",
        "authentication failure",
    )
    check(ok, f"a wrong password is invalid_grant ({got})")
    ok, got = refused(
        lambda: Salesforce(username="someone@else.example", password=PASSWORD, consumer_key=CLIENT_ID,
                           consumer_secret=CLIENT_SECRET, domain="login", session=session),
        "invalid_grant",
        "authentication failure",
    )
    check(ok, f"an unknown user is invalid_grant ({got})")
    r = requests.post(
        token_url,
        data={"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "username": USERNAME, "password": "wrong"},
    )
    check(r.status_code == 400 and r.json() == {"error": "invalid_grant", "error_description": "authentication failure"},
          f"a wrong password: Salesforce's error JSON ({r.text})")
    r = requests.post(
        token_url,
        data={"grant_type": "password", "client_id": CLIENT_ID, "username": USERNAME, "password": PASSWORD},
    )
    check(r.status_code == 400 and r.json().get("error") == "invalid_client",
          f"the password grant without the client secret is refused ({r.status_code} {r.text})")

    # JWT bearer with simple-salesforce's own assertion (privatekey=).
    sf = Salesforce(username=USERNAME, consumer_key=CLIENT_ID, privatekey=key, domain="login", session=session)
    check(sf.query("SELECT Id FROM Account")["totalSize"] == 0, "JWT bearer signs in")
    identity = requests.get(
        f"https://{sf.sf_instance}/id/00D8d0000000001EAA/x",
        headers={"Authorization": f"Bearer {sf.session_id}"},
    ).json()
    check(identity.get("username") == USERNAME, f"the JWT session acts as its sub ({identity.get('username')})")
    ok, got = refused(
        lambda: Salesforce(username=USERNAME, consumer_key=CLIENT_ID, privatekey=other, domain="login", session=session),
        "invalid_grant",
        "invalid assertion",
    )
    check(ok, f"an assertion signed with another key is refused ({got})")

    def post_assertion(a):
        r = requests.post(token_url, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": a})
        return r.status_code, r.json()

    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    cases = [
        ("an expired assertion", assertion(key, exp=int(past.timestamp())), "invalid_grant", "expired authorization code"),
        ("another issuer", assertion(key, iss="someone-else"), "invalid_client_id", "client identifier invalid"),
        ("another audience", assertion(key, aud="https://evil.example"), "invalid_grant", "audience is invalid"),
        ("an unknown user", assertion(key, sub="ghost@partner.example"), "invalid_grant", "user hasn't approved this consumer"),
        ("three dots of garbage", "abc.def.ghi", "invalid_grant", "invalid assertion"),
        ("an HS256 assertion", jwt.encode({"iss": CLIENT_ID, "sub": USERNAME, "aud": "https://login.salesforce.com", "exp": 4102444800}, CLIENT_SECRET, algorithm="HS256"), "invalid_grant", "invalid assertion"),
    ]
    for what, a, code, description in cases:
        status, body = post_assertion(a)
        check(status == 400 and body == {"error": code, "error_description": description},
              f"{what} is refused with {code} ({status} {body})")
    # A forged assertion: a valid one with its claims swapped, signature kept.
    good = assertion(key)
    h, _, sig = good.split(".")
    forged_claims = base64.urlsafe_b64encode(
        b'{"iss":"%s","sub":"%s","aud":"https://login.salesforce.com","exp":4102444800}'
        % (CLIENT_ID.encode(), USERNAME.encode())
    ).rstrip(b"=").decode()
    status, body = post_assertion(f"{h}.{forged_claims}.{sig}")
    check(status == 400 and body.get("error_description") == "invalid assertion", f"a forged assertion is refused ({body})")

    # Refresh tokens: the org's is accepted, a never-issued one refused; revoke ends both.
    r = requests.post(token_url, data={"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": REFRESH})
    check(r.status_code == 200, f"a refresh token the org issued is accepted ({r.status_code} {r.text})")
    refreshed = r.json().get("access_token", "")
    r = requests.post(token_url, data={"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": "5AepNeverIssued"})
    check(r.status_code == 400 and r.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"},
          f"a never-issued refresh token is refused ({r.text})")
    basic = (CLIENT_ID, CLIENT_SECRET)
    r = requests.post(base + "/services/oauth2/introspect", data={"token": refreshed}, auth=basic)
    check(r.json().get("active") is True and r.json().get("username") == USERNAME, f"introspect: active ({r.text})")
    r = requests.post(base + "/services/oauth2/introspect", data={"token": refreshed}, auth=(CLIENT_ID, "wrong"))
    check(r.status_code == 400 and r.json().get("error") == "invalid_client", f"introspect needs the client ({r.text})")
    r = requests.post(base + "/services/oauth2/revoke", data={"token": REFRESH})
    check(r.status_code == 200, f"revoke the refresh token ({r.status_code})")
    r = requests.post(token_url, data={"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": REFRESH})
    check(r.status_code == 400, f"a revoked refresh token is refused ({r.status_code})")
    r = requests.get(f"{base}/services/data/v62.0/limits", headers={"Authorization": f"Bearer {refreshed}"})
    check(r.status_code == 401, f"revoking the refresh token ended its sessions ({r.status_code})")
    r = requests.post(base + "/services/oauth2/introspect", data={"token": refreshed}, auth=basic)
    check(r.json() == {"active": False}, f"introspect: inactive after revoke ({r.text})")
    r = requests.post(base + "/services/oauth2/revoke", data={"token": sf.session_id})
    check(r.status_code == 200, "revoke an access token")
    r = requests.get(f"{base}/services/data/v62.0/limits", headers={"Authorization": f"Bearer {sf.session_id}"})
    check(r.status_code == 401, f"a revoked access token is refused ({r.status_code})")
    r = requests.post(base + "/services/oauth2/revoke", data={"token": "never-issued"})
    check(r.status_code == 400 and r.json().get("error") == "invalid_token", f"revoking an unknown token ({r.text})")

    if failures:
        print(f"oauth: {len(failures)} check(s) failed")
        sys.exit(1)
    print("oauth: all checks passed")


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    else:
        run(sys.argv[2])
