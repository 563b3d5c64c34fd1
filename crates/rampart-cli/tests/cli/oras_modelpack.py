"""Push a CNCF ModelPack artifact to a running Rampart with oras-py's low-level API, pull it back and
check every byte, attach a referrer (a manifest whose `subject` is the model) and find it through the
referrers API. Usage: oras_modelpack.py HOST:PORT TOKEN WORKDIR REPO:TAG [basic|token]

`basic` uses oras-py's Basic backend; `token` its token backend (the Docker token flow: Bearer
challenge, `GET /token` with Basic, then Bearer JWTs).

Exits non-zero (with a message) on any mismatch. Driven by the `registry` tests of the CLI test binary.
"""

import hashlib
import json
import os
import sys
import urllib.parse

import oras.client
import requests

host, token, work, target = sys.argv[1:5]
mode = sys.argv[5] if len(sys.argv) > 5 else "basic"
repo, tag = target.rsplit(":", 1)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write(name: str, data: bytes) -> str:
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend=mode)
client.auth.set_basic_auth("anyone", token)
reg = client
container = reg.get_container(f"{host}/{target}")

config = json.dumps(
    {
        "descriptor": {"name": "tiny", "version": "1"},
        "config": {"format": "safetensors", "paramSize": "1"},
        "modelfs": {"type": "layers", "diffIds": []},
    }
).encode()
weights = [os.urandom(300_000), b"second shard \x00\xff" * 1000]
config_path = write("config.json", config)
layers = []
for i, data in enumerate(weights):
    path = write(f"shard-{i}.bin", data)
    layer = {
        "mediaType": "application/vnd.cncf.model.weight.v1.raw",
        "digest": digest(data),
        "size": len(data),
        "annotations": {"org.opencontainers.image.title": f"shard-{i}.bin"},
    }
    # The second shard goes up in chunks (PATCH with Content-Range), the first monolithically.
    resp = reg.upload_blob(path, container, layer, do_chunked=(i == 1), chunk_size=4096)
    if resp.status_code != 201:
        sys.exit(f"blob upload {i}: {resp.status_code} {resp.text}")
    layers.append(layer)
config_desc = {
    "mediaType": "application/vnd.cncf.model.config.v1+json",
    "digest": digest(config),
    "size": len(config),
}
resp = reg.upload_blob(config_path, container, config_desc)
if resp.status_code != 201:
    sys.exit(f"config upload: {resp.status_code} {resp.text}")
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.cncf.model.manifest.v1+json",
    "config": config_desc,
    "layers": layers,
    "annotations": {"org.opencontainers.image.created": "2026-11-28T00:00:00Z"},
}
resp = reg.upload_manifest(manifest, container)
if resp.status_code != 201:
    sys.exit(f"manifest upload: {resp.status_code} {resp.text}")
sent = json.dumps(manifest).encode()  # what requests put on the wire
if resp.headers.get("Docker-Content-Digest") != digest(sent):
    sys.exit(f"manifest digest {resp.headers.get('Docker-Content-Digest')} != {digest(sent)}")

# Pull: the manifest (exact bytes), then every blob byte-identical.
got = reg.get_manifest(container)
if got != manifest:
    sys.exit(f"manifest differs: {got}")
raw = reg.do_request(
    f"{reg.prefix}://{container.manifest_url()}",
    "GET",
    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
)
if raw.content != sent:
    sys.exit("manifest bytes differ")
for desc, data in zip(layers + [config_desc], weights + [config]):
    out = os.path.join(work, "pulled-" + desc["digest"].split(":")[1])
    reg.download_blob(container, desc["digest"], out)
    with open(out, "rb") as f:
        if f.read() != data:
            sys.exit(f"blob {desc['digest']} differs after pull")

# Attach a referrer (e.g. a scan report): empty config, one payload layer, `subject` = the model.
model = {"mediaType": manifest["mediaType"], "digest": digest(sent), "size": len(sent)}
report_type = "application/vnd.rampart.scan-report.v1+json"
empty = b"{}"
empty_path = write("empty.json", empty)
empty_desc = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(empty), "size": 2}
resp = reg.upload_blob(empty_path, container, empty_desc)
if resp.status_code != 201:
    sys.exit(f"empty config upload: {resp.status_code} {resp.text}")
report = json.dumps({"verdict": "clean"}).encode()
report_path = write("report.json", report)
report_desc = {"mediaType": "application/json", "digest": digest(report), "size": len(report)}
resp = reg.upload_blob(report_path, container, report_desc)
if resp.status_code != 201:
    sys.exit(f"report upload: {resp.status_code} {resp.text}")
referrer = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": report_type,
    "config": empty_desc,
    "layers": [report_desc],
    "subject": model,
    "annotations": {"org.opencontainers.image.created": "2026-11-28T00:00:01Z"},
}
referrer_bytes = json.dumps(referrer).encode()
by_digest = reg.get_container(f"{host}/{repo}@{digest(referrer_bytes)}")
resp = reg.upload_manifest(referrer, by_digest)
if resp.status_code != 201:
    sys.exit(f"referrer upload: {resp.status_code} {resp.text}")
if resp.headers.get("OCI-Subject") != digest(sent):
    sys.exit(f"OCI-Subject: {resp.headers.get('OCI-Subject')}")


def referrers(query: str):
    url = f"{reg.prefix}://{host}/v2/{repo}/referrers/{digest(sent)}{query}"
    r = reg.do_request(url, "GET")
    if r.status_code != 200:
        sys.exit(f"referrers{query}: {r.status_code} {r.text}")
    return r


r = referrers("")
found = [m for m in r.json()["manifests"] if m["digest"] == digest(referrer_bytes)]
if len(found) != 1 or found[0]["artifactType"] != report_type:
    sys.exit(f"referrers did not list the report: {r.text}")
if found[0].get("annotations", {}).get("org.opencontainers.image.created") != "2026-11-28T00:00:01Z":
    sys.exit(f"referrer annotations not copied: {found[0]}")
# Encoded as clients do ('+' would otherwise decode to a space).
r = referrers("?artifactType=" + urllib.parse.quote(report_type, safe=""))
if r.headers.get("OCI-Filters-Applied") != "artifactType" or len(r.json()["manifests"]) != 1:
    sys.exit(f"filtered referrers: {r.headers} {r.text}")
r = referrers("?artifactType=application/spdx%2Bjson")
if r.json()["manifests"] != []:
    sys.exit(f"filter let another type through: {r.text}")

if mode == "token":
    # The pushes above really went through the token flow: oras-py holds a registry JWT.
    jwt = getattr(reg.auth, "token", None)
    if not jwt or jwt.count(".") != 2:
        sys.exit("oras-py did not obtain a registry token")

# Without credentials the registry must refuse, pointing at its token endpoint.
r = requests.head(f"http://{host}/v2/{repo}/blobs/{layers[0]['digest']}", timeout=10)
challenge = r.headers.get("WWW-Authenticate", "")
if r.status_code != 401 or not challenge.startswith(f'Bearer realm="http://{host}/token",service="rampart"'):
    sys.exit(f"anonymous HEAD gave {r.status_code} {challenge}")
print(digest(sent))
