"""``kiosk-release publish``: upload a signed bundle to the controller over its HTTPS API.

Each file goes up by its SHA-256 in pieces (``PUT /api/v1/releases/uploads/{sha256}?offset=N``,
at most ``chunk`` bytes each, under the console's body limit); the upload resumes where the
controller says it has got to (``GET`` the same path), so a dropped link costs one piece. Then the
manifest is posted (``POST /api/v1/releases``) and the controller checks and publishes the
release. Authenticates with an admin API token (``kioskctl api-token create NAME --role admin``).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from contract import release as R
from foundation.errors import ProvisioningError

CHUNK = 512 * 1024


class Client:
    def __init__(self, base: str, token: str, *, context: ssl.SSLContext | None = None, timeout: float = 60.0) -> None:
        self.base, self.token, self.context, self.timeout = base.rstrip("/"), token, context, timeout

    def call(self, method: str, path: str, body: bytes | None = None, ctype: str = "application/json",
             ok: tuple[int, ...] = (200, 201)) -> tuple[int, Any]:
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={"authorization": f"Bearer {self.token}", "content-type": ctype})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read())
            except ValueError:
                detail = {}
            if exc.code in ok:
                return exc.code, detail
            raise ProvisioningError(f"{method} {path}: HTTP {exc.code}: {detail.get('error', exc.reason)}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ProvisioningError(f"controller {self.base} not reachable: {exc}") from None


def publish(bundle: Path, client: Client, *, chunk: int = CHUNK) -> dict[str, Any]:
    try:
        raw = (Path(bundle) / R.MANIFEST_FILE).read_bytes()
    except OSError:
        raise ProvisioningError(f"{bundle} is not a bundle (no {R.MANIFEST_FILE})") from None
    man = R.parse_manifest(raw)
    if not man.document.get("signature"):
        raise ProvisioningError(f"release {man.version} is not signed: kiosk-release sign first")
    sent = 0
    for entry in {e.sha256: e for e in man.files}.values():
        path = f"/api/v1/releases/uploads/{entry.sha256}"
        _, got = client.call("GET", path)
        offset = int(got["size"])
        with R.object_path(bundle, entry.sha256).open("rb") as fh:
            fh.seek(offset)
            while offset < entry.size:
                piece = fh.read(chunk)
                if not piece:
                    raise ProvisioningError(f"{entry.path}: the file is shorter than the manifest says")
                status, got = client.call("PUT", f"{path}?offset={offset}", piece, "application/octet-stream",
                                          ok=(200, 409))
                sent += len(piece) if status == 200 else 0
                offset = int(got["size"])
                fh.seek(offset)
    _, rec = client.call("POST", "/api/v1/releases", raw)
    return {**rec, "uploaded_bytes": sent}
