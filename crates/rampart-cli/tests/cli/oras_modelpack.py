"""Push a CNCF ModelPack artifact to a running Rampart with oras-py's low-level API (Basic auth), pull
it back and check every byte. Usage: oras_modelpack.py HOST:PORT TOKEN WORKDIR REPO:TAG

Exits non-zero (with a message) on any mismatch. Driven by the `registry` tests of the CLI test binary.
"""

import hashlib
import json
import os
import sys

import oras.client
import requests

host, token, work, target = sys.argv[1:5]
repo, tag = target.rsplit(":", 1)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write(name: str, data: bytes) -> str:
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
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

# Without credentials the registry must refuse.
r = requests.head(f"http://{host}/v2/{repo}/blobs/{layers[0]['digest']}", timeout=10)
if r.status_code != 401 or not r.headers.get("WWW-Authenticate", "").startswith("Basic "):
    sys.exit(f"anonymous HEAD gave {r.status_code}")
print(digest(sent))
