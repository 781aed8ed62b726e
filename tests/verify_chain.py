#!/usr/bin/env python3
"""Verify a rancher-access audit export offline, with the Python standard library only.

Usage: verify_chain.py EXPORT.ndjson [--expect-head SEQ:HASH]

Reads the NDJSON that `rancherctl approvals audit --export` or `GET /api/v1/audit/export` wrote, in any of its
formats (jsonl, ocsf, cloudevents), and recomputes every entry's SHA-256 from its fields: each hash must match, each
entry must point at the one before it, and the sequence numbers must follow each other. An export that starts after
sequence 0 (`--since` / `after=`) is checked from its first entry's `prev_hash`. With `--expect-head`, the entry at
that sequence number must carry that hash (the head published elsewhere, so a rewritten log is caught).

Exit status 0 when the chain holds, 1 naming the first line that does not, 2 on bad usage.
"""

import hashlib
import json
import sys

DOMAIN = "rancher-approval/audit/v1"
GENESIS = "0" * 64


def entry_of(record):
    """The audit entry inside an exported record, whatever its format."""
    if "specversion" in record:  # CloudEvents: the entry is the data
        return record["data"]
    if "class_uid" in record:  # OCSF: the entry rides under unmapped
        return record["unmapped"]["rancher_access"]
    return record


def entry_hash(e):
    """The hash the service computes: SHA-256 over the canonical JSON array of the entry's fields."""
    canonical = [
        DOMAIN,
        e["seq"],
        e["at"],
        e["actor"],
        e["kind"],
        e.get("request_id"),
        e.get("workflow_id"),
        e["detail"],
        e["prev_hash"],
    ]
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify(lines, expect=None):
    """Returns (count, head seq, head hash); raises ValueError naming the first problem."""
    prev_seq, prev_hash, count = None, None, 0
    seen_expected = expect is None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            e = entry_of(json.loads(line))
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError("line %d is not an export record: %s" % (number, err))
        if prev_seq is None:
            if e["seq"] == 1 and e["prev_hash"] != GENESIS:
                raise ValueError("line %d: the first entry does not start the chain" % number)
        else:
            if e["seq"] != prev_seq + 1:
                raise ValueError("line %d: seq %s follows %s (a gap or reordering)" % (number, e["seq"], prev_seq))
            if e["prev_hash"] != prev_hash:
                raise ValueError("line %d: seq %s does not point at the entry before it" % (number, e["seq"]))
        computed = entry_hash(e)
        if computed != e["hash"]:
            raise ValueError("line %d: seq %s was changed (its hash does not match its fields)" % (number, e["seq"]))
        if expect is not None and e["seq"] == expect[0]:
            if e["hash"] != expect[1]:
                raise ValueError("line %d: seq %s does not carry the expected head hash" % (number, e["seq"]))
            seen_expected = True
        prev_seq, prev_hash, count = e["seq"], e["hash"], count + 1
    if not seen_expected:
        raise ValueError("the expected head, seq %d, is not in the export" % expect[0])
    return count, prev_seq or 0, prev_hash or GENESIS


def main(argv):
    args = argv[1:]
    expect = None
    if "--expect-head" in args:
        i = args.index("--expect-head")
        try:
            seq, digest = args[i + 1].split(":", 1)
            expect = (int(seq), digest.strip().lower())
        except (IndexError, ValueError):
            print("--expect-head takes SEQ:HASH, as the service logs its head", file=sys.stderr)
            return 2
        del args[i : i + 2]
    if len(args) != 1:
        print("usage: verify_chain.py EXPORT.ndjson [--expect-head SEQ:HASH]", file=sys.stderr)
        return 2
    try:
        with open(args[0], encoding="utf-8") as f:
            count, seq, digest = verify(f, expect)
    except OSError as err:
        print("cannot read %s: %s" % (args[0], err.strerror), file=sys.stderr)
        return 2
    except ValueError as err:
        print("chain broken: %s" % err, file=sys.stderr)
        return 1
    print("ok: %d entries, head %d:%s" % (count, seq, digest))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
