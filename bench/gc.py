#!/usr/bin/env python3
"""Helpers of bench/gc (Python 3 standard library only).

    gc.py load URL STATE [--repos N] [--manifests N] [--layers N] [--unreferenced N] [--clients N]
        Uploads (manifests x (layers + 1)) referenced blobs and `unreferenced` others to URL,
        each 64-256 bytes of distinct content, spread over `repos` repositories, then pushes
        `manifests` tagged OCI image manifests (one config blob and `layers` layer blobs each).
        Writes the counts, timings and the digests of the unreferenced blobs to STATE (JSON).

    gc.py db DATA_DIR | gc.py db --postgres URL
        Prints the database's sizes (SQLite: files and pages, read-only; PostgreSQL:
        pg_database_size through psql) and row counts as JSON.

    gc.py snapshot DATA_DIR DEST
        Copies a data directory in use: the SQLite database through the online backup API.

    gc.py check STATE DRY_JSON REAL_JSON
        Verifies that the dry run listed, and the real pass removed, exactly the unreferenced
        blobs and no manifest. Exits 1, saying why, otherwise.

    gc.py probe URL STATE
        After the pass: GETs a sample of removed blobs (404 expected) and of kept blobs and
        manifests (200 expected) through the running server.

    gc.py report DIR TITLE
        Prints the Markdown summary of the files bench/gc left in DIR.
"""

import argparse
import hashlib
import http.client
import json
import os
import queue
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def blob(kind, i):
    """The content and digest of blob `i` of `kind` ("c" config, "l" layer, "u" unreferenced):
    a distinct prefix padded with hash output to 64-256 bytes."""
    seed = f"berth gc bench {kind} {i}\n".encode()
    pad = hashlib.sha256(seed).digest()
    size = 64 + int.from_bytes(pad[:2], "little") % 193
    if kind == "c":
        # A config blob that is also a plausible image config.
        body = json.dumps(
            {"architecture": "amd64", "os": "linux", "config": {"Labels": {"bench": str(i)}},
             "rootfs": {"type": "layers", "diff_ids": []}, "pad": pad.hex()}
        ).encode()
    else:
        body = seed
        while len(body) < size:
            pad = hashlib.sha256(pad).digest()
            body += pad
        body = body[:size]
    return body, "sha256:" + hashlib.sha256(body).hexdigest()


def repo_name(r):
    return f"gcbench/r{r:03d}"


class Client:
    """One keep-alive HTTP/1.1 connection, reopened after an error."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, data
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def run_parallel(url, clients, jobs, work):
    """Runs work(client, job) for every job on `clients` threads, each with its own
    connection. Raises the first failure after all threads stop."""
    q = queue.Queue()
    for j in jobs:
        q.put(j)
    errors = []

    def worker():
        c = Client(url)
        while not errors:
            try:
                j = q.get_nowait()
            except queue.Empty:
                return
            try:
                work(c, j)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def load(args):
    m, layers, unref, repos = args.manifests, args.layers, args.unreferenced, args.repos
    # Blob jobs: (repository, kind, index). Manifest k lives in repository k % repos, and so do
    # its config and layers; unreferenced blob j in repository j % repos. Kinds are interleaved
    # so referenced and unreferenced blobs are written side by side.
    jobs = []
    for k in range(m):
        jobs.append((k % repos, "c", k))
        for n in range(layers):
            jobs.append((k % repos, "l", k * layers + n))
    ref_jobs = jobs
    unref_jobs = [(j % repos, "u", j) for j in range(unref)]
    jobs = []
    ri, ui = 0, 0
    while ri < len(ref_jobs) or ui < len(unref_jobs):
        if ri < len(ref_jobs):
            jobs.append(ref_jobs[ri])
            ri += 1
        if ui < len(unref_jobs):
            jobs.append(unref_jobs[ui])
            ui += 1

    total_bytes = [0]
    lock = threading.Lock()

    def upload(c, job):
        r, kind, i = job
        body, digest = blob(kind, i)
        status, data = c.request(
            "POST",
            f"/v2/{repo_name(r)}/blobs/uploads/?digest={digest}",
            body=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        if status != 201:
            raise RuntimeError(f"upload of {digest} to {repo_name(r)}: {status} {data[:300]!r}")
        with lock:
            total_bytes[0] += len(body)

    t0 = time.monotonic()
    run_parallel(args.url, args.clients, jobs, upload)
    t1 = time.monotonic()

    def push(c, k):
        cfg, cfg_digest = blob("c", k)
        descs = []
        for n in range(layers):
            body, digest = blob("l", k * layers + n)
            descs.append({"mediaType": OCI_LAYER, "digest": digest, "size": len(body)})
        manifest = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": {"mediaType": OCI_CONFIG, "digest": cfg_digest, "size": len(cfg)},
             "layers": descs},
            separators=(",", ":"),
        ).encode()
        status, data = c.request(
            "PUT",
            f"/v2/{repo_name(k % repos)}/manifests/t{k}",
            body=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        if status != 201:
            raise RuntimeError(f"manifest t{k}: {status} {data[:300]!r}")

    run_parallel(args.url, min(args.clients, 16), range(m), push)
    t2 = time.monotonic()

    unref_digests = sorted(blob("u", j)[1] for j in range(unref))
    unref_bytes = sum(len(blob("u", j)[0]) for j in range(unref))
    state = {
        "repos": repos,
        "manifests": m,
        "layers_per_manifest": layers,
        "referenced_blobs": m * (layers + 1),
        "unreferenced_blobs": unref,
        "blobs": len(jobs),
        "blob_bytes": total_bytes[0],
        "unreferenced_bytes": unref_bytes,
        "clients": args.clients,
        "blob_upload_secs": t1 - t0,
        "manifest_push_secs": t2 - t1,
        "unreferenced": unref_digests,
    }
    with open(args.state, "w") as f:
        json.dump(state, f)
    print(
        f"uploaded {len(jobs)} blobs ({total_bytes[0]} bytes) in {t1 - t0:.1f} s "
        f"({len(jobs) / (t1 - t0):.0f}/s), pushed {m} manifests in {t2 - t1:.1f} s",
        file=sys.stderr,
    )


TABLES = ("blobs", "repository_blobs", "manifests", "manifest_blobs",
          "gc_blob_reviews", "gc_manifest_reviews", "gc_blob_deletions")


def db(args):
    if args.postgres:
        # psql, as the standard library has no PostgreSQL client.
        counts = ", ".join(f"(SELECT count(*) FROM {t})" for t in TABLES)
        row = subprocess.run(
            ["psql", args.postgres, "-Atc", f"SELECT pg_database_size(current_database()), {counts}"],
            check=True, capture_output=True, text=True,
        ).stdout.strip().split("|")
        out = {"used_bytes": int(row[0])}
        out.update({t: int(v) for t, v in zip(TABLES, row[1:])})
        print(json.dumps(out))
        return
    path = os.path.join(args.data_dir, "berth.db")
    out = {}
    for suffix in ("", "-wal"):
        p = path + suffix
        out["file" + suffix.replace("-", "_")] = os.path.getsize(p) if os.path.exists(p) else 0
    # Read-only, so the running server's WAL is read but never checkpointed or changed.
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    out["page_size"] = page_size
    out["page_count"] = conn.execute("PRAGMA page_count").fetchone()[0]
    out["freelist_count"] = conn.execute("PRAGMA freelist_count").fetchone()[0]
    out["used_bytes"] = (out["page_count"] - out["freelist_count"]) * page_size
    for table in TABLES:
        out[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    conn.close()
    print(json.dumps(out))


def snapshot(args):
    """Copies DATA_DIR to DEST while a server runs on it: the database through SQLite's online
    backup (consistent whatever the server does), everything else as files."""
    shutil.copytree(args.data_dir, args.dest, ignore=shutil.ignore_patterns("berth.db*"))
    src = sqlite3.connect(f"file:{os.path.join(args.data_dir, 'berth.db')}?mode=ro", uri=True)
    dst = sqlite3.connect(os.path.join(args.dest, "berth.db"))
    src.backup(dst)
    dst.execute("PRAGMA journal_mode=WAL")
    dst.close()
    src.close()


def check(args):
    state = json.load(open(args.state))
    expected = set(state["unreferenced"])
    ok = True
    for name, path, dry in (("dry run", args.dry, True), ("real pass", args.real, False)):
        report = json.load(open(path))
        got = [b["digest"] for b in report["blobs"]]
        problems = []
        if report["dry_run"] != dry:
            problems.append(f"dry_run is {report['dry_run']}")
        if len(got) != len(set(got)):
            problems.append("a blob is listed twice")
        missing, extra = expected - set(got), set(got) - expected
        if missing:
            problems.append(f"{len(missing)} unreferenced blobs not listed, e.g. {sorted(missing)[0]}")
        if extra:
            problems.append(f"{len(extra)} referenced blobs listed, e.g. {sorted(extra)[0]}")
        if report["manifests"]:
            problems.append(f"{len(report['manifests'])} manifests listed")
        if report["bytes_freed"] != state["unreferenced_bytes"]:
            problems.append(f"bytes_freed {report['bytes_freed']}, expected {state['unreferenced_bytes']}")
        if problems:
            ok = False
            print(f"gc.py check: {name}: " + "; ".join(problems), file=sys.stderr)
        else:
            print(f"gc.py check: {name}: exactly the {len(expected)} unreferenced blobs, "
                  f"{report['bytes_freed']} bytes", file=sys.stderr)
    sys.exit(0 if ok else 1)


def probe(args):
    state = json.load(open(args.state))
    repos, layers = state["repos"], state["layers_per_manifest"]
    c = Client(args.url)
    bad = []
    step = max(1, state["unreferenced_blobs"] // 200)
    for j in range(0, state["unreferenced_blobs"], step):
        _, digest = blob("u", j)
        status, _ = c.request("GET", f"/v2/{repo_name(j % repos)}/blobs/{digest}")
        if status != 404:
            bad.append(f"removed blob {digest}: {status}")
    step = max(1, state["manifests"] // 50)
    for k in range(0, state["manifests"], step):
        r = repo_name(k % repos)
        status, _ = c.request("GET", f"/v2/{r}/manifests/t{k}", headers={"Accept": OCI_MANIFEST})
        if status != 200:
            bad.append(f"manifest {r}:t{k}: {status}")
        for kind, i in (("c", k), ("l", k * layers), ("l", k * layers + layers - 1)):
            _, digest = blob(kind, i)
            status, _ = c.request("GET", f"/v2/{r}/blobs/{digest}")
            if status != 200:
                bad.append(f"kept blob {digest}: {status}")
    if bad:
        print("gc.py probe: " + "; ".join(bad[:10]), file=sys.stderr)
        sys.exit(1)
    print("gc.py probe: removed blobs answer 404, kept manifests and blobs 200", file=sys.stderr)


def time_report(path):
    """The figures of a `/usr/bin/time -v` report, or {} without one."""
    if not os.path.exists(path):
        return {}
    out = {}
    for line in open(path):
        key, _, value = line.strip().rpartition(": ")
        if key in ("User time (seconds)", "System time (seconds)", "Maximum resident set size (kbytes)",
                   "File system outputs", "Voluntary context switches"):
            out[key] = float(value)
    return out


def report(args):
    d = args.dir

    def read(name, default=None):
        p = os.path.join(d, name)
        if not os.path.exists(p):
            return default
        return json.load(open(p)) if name.endswith(".json") else open(p).read().strip()

    st = read("state.json")
    mib = 1 << 20
    rows = []

    def row(what, value):
        rows.append(f"| {what} | {value} |")

    n_ref, n_unref, m, layers = st["referenced_blobs"], st["unreferenced_blobs"], st["manifests"], st["layers_per_manifest"]
    row(f"blob uploads ({st['blobs']:,}, {st['clients']} clients), s", f"{st['blob_upload_secs']:.1f}")
    row("blob uploads per second", f"{st['blobs'] / st['blob_upload_secs']:,.0f}")
    row(f"manifest pushes ({m} x {layers + 1} descriptors, 16 clients), s", f"{st['manifest_push_secs']:.2f}")
    rss = read("serve.rss")
    if rss:
        row("server peak RSS after the load, MiB", f"{int(rss) / 1024:.1f}")
    for prefix, what in (("dry", "`berth gc --dry-run`"), ("real", "`berth gc`"),
                         ("nofsync", "`berth gc` with fsync a no-op (eatmydata, on a copy; reference only)")):
        secs = read(prefix + ".secs")
        if secs is None:
            continue
        secs = float(secs)
        rep_json = read(prefix + ".json")
        n = len(rep_json["blobs"])
        verb = "listed" if rep_json["dry_run"] else "removed"
        row(f"{what}: wall time, s", f"**{secs:.2f}**")
        row(f"{what}: blobs {verb} per second", f"**{n / secs:,.0f}**")
        t = time_report(os.path.join(d, prefix + ".time"))
        if t:
            cpu = t["User time (seconds)"] + t["System time (seconds)"]
            row(f"{what}: CPU time user + system, s (share of wall time)",
                f"{t['User time (seconds)']:.2f} + {t['System time (seconds)']:.2f} ({100 * cpu / secs:.0f}%)")
            row(f"{what}: peak RSS, MiB", f"{t['Maximum resident set size (kbytes)'] / 1024:.1f}")
            if prefix != "dry":
                row(f"{what}: voluntary context switches", f"{t['Voluntary context switches']:,.0f}")
    real = read("real.json")
    row("blobs removed", f"{len(real['blobs']):,} of {st['blobs']:,}")
    row("manifests removed", f"{len(real['manifests'])}")
    row("bytes freed", f"{real['bytes_freed']:,}")
    before, after = read("before.json"), read("after.json")
    if before and "file" in before:
        for label, db in (("before", before), ("after", after)):
            row(f"database file + WAL {label}, MiB",
                f"{db['file'] / mib:.1f} + {db['file_wal'] / mib:.1f}")
        row("database pages in use before / after, MiB (free pages after)",
            f"{before['used_bytes'] / mib:.1f} / {after['used_bytes'] / mib:.1f} ({after['freelist_count']:,})")
    elif before:
        row("database size before / after (pg_database_size), MiB",
            f"{before['used_bytes'] / mib:.1f} / {after['used_bytes'] / mib:.1f}")
    if before:
        row("blob rows before / after", f"{before['blobs']:,} / {after['blobs']:,}")
        row("review queue rows (blobs) before / after",
            f"{before['gc_blob_reviews']:,} / {after['gc_blob_reviews']:,}")
    fb, fa = read("before.files"), read("after.files")
    if fb is not None:
        row("blob files on disk before / after", f"{int(fb):,} / {int(fa):,}")

    print(f"## {args.title}")
    print()
    print(f"{st['blobs']:,} distinct blobs of 64-256 bytes ({st['blob_bytes']:,} bytes) in {st['repos']} "
          f"repositories: {m} configs and {n_ref - m:,} layers referenced by {m} tagged manifests "
          f"({layers} layers each), {n_unref:,} referenced by nothing ({st['unreferenced_bytes']:,} bytes). "
          "The server stays up (idle, GC off inside it) while `berth gc --review-delay 0` runs; "
          "the dry run and the real pass each listed exactly the unreferenced blobs (checked).")
    print()
    print("| measurement | value |")
    print("|---|---:|")
    print("\n".join(rows))
    print()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("load")
    s.add_argument("url")
    s.add_argument("state")
    s.add_argument("--repos", type=int, default=50)
    s.add_argument("--manifests", type=int, default=500)
    s.add_argument("--layers", type=int, default=99)
    s.add_argument("--unreferenced", type=int, default=50000)
    s.add_argument("--clients", type=int, default=32)
    s.set_defaults(fn=load)
    s = sub.add_parser("db")
    s.add_argument("data_dir", nargs="?")
    s.add_argument("--postgres", metavar="URL")
    s.set_defaults(fn=db)
    s = sub.add_parser("snapshot")
    s.add_argument("data_dir")
    s.add_argument("dest")
    s.set_defaults(fn=snapshot)
    s = sub.add_parser("report")
    s.add_argument("dir")
    s.add_argument("title")
    s.set_defaults(fn=report)
    s = sub.add_parser("check")
    s.add_argument("state")
    s.add_argument("dry")
    s.add_argument("real")
    s.set_defaults(fn=check)
    s = sub.add_parser("probe")
    s.add_argument("url")
    s.add_argument("state")
    s.set_defaults(fn=probe)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
