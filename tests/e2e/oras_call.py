"""One call of the oras Python client (PyPI `oras`), for berth's end-to-end tests.

    python3 oras_call.py METHOD 'KEYWORD ARGUMENTS AS JSON'

calls `oras.client.OrasClient(insecure=True).METHOD(**kwargs)` (plain HTTP, as for a registry
on loopback) and prints its result as JSON: a response's status and `Docker-Content-Digest`,
or the value itself. A `subject` argument is `{"mediaType", "digest", "size"}`.
"""

import json
import sys

import oras.client
import oras.oci


def main():
    method, kwargs = sys.argv[1], json.loads(sys.argv[2])
    if "subject" in kwargs:
        kwargs["subject"] = oras.oci.Subject(**kwargs["subject"])
    result = getattr(oras.client.OrasClient(insecure=True), method)(**kwargs)
    if hasattr(result, "status_code"):
        result = {
            "status": result.status_code,
            "digest": result.headers.get("Docker-Content-Digest"),
        }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
