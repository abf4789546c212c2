#!/usr/bin/env python3
"""An independent RFC 6962 verifier for lotline's proofs, standard library only.

Reads one JSON document per line on stdin, each either
  {"kind": "inclusion", "proof": <lotline proof --json>}
or
  {"kind": "consistency", "proof": <lotline consistency --json>, "old_root_b64": "..."}
and checks it by rebuilding the roots with RFC 6962's recursive definitions
(not RFC 9162's iterative algorithm that lotline itself uses). Prints one line
per document and exits 1 if any fails.
"""
import base64
import hashlib
import json
import sys


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root_from_path(leaf, m, n, path):
    """MTH of the n-leaf tree, given leaf m's hash and PATH(m, D[n]) (top sibling last)."""
    if n == 1:
        if path:
            raise ValueError("path too long")
        return leaf
    if not path:
        raise ValueError("path too short")
    k = split(n)
    sibling, rest = path[-1], path[:-1]
    if m < k:
        return node_hash(root_from_path(leaf, m, k, rest), sibling)
    return node_hash(sibling, root_from_path(leaf, m - k, n - k, rest))


def roots_from_consistency(m, n, proof, old_root):
    """(old root, new root) rebuilt from PROOF(m, D[n]) (top-level hash last)."""
    stack = list(proof)

    def sub(m, n, complete):
        if m == n:
            if complete:
                return old_root, old_root
            h = stack.pop()
            return h, h
        k = split(n)
        if m <= k:
            right = stack.pop()
            old, new = sub(m, k, complete)
            return old, node_hash(new, right)
        left = stack.pop()
        old, new = sub(m - k, n - k, False)
        return node_hash(left, old), node_hash(left, new)

    if m == 0:
        # The empty tree is a prefix of every tree; its proof is empty.
        if proof:
            raise ValueError("proof from the empty tree must be empty")
        return old_root, None
    if m == n:
        if proof:
            raise ValueError("proof between equal sizes must be empty")
        return old_root, old_root
    old, new = sub(m, n, True)
    if stack:
        raise ValueError("proof too long")
    return old, new


def checkpoint_root(note):
    lines = note.split("\n")
    return int(lines[1]), base64.b64decode(lines[2])


def main():
    failures = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        doc = json.loads(line)
        p = doc["proof"]
        try:
            if doc["kind"] == "inclusion":
                leaf = base64.b64decode(p["leaf"])
                h = leaf_hash(leaf)
                assert h.hex() == p["leaf_hash"], "leaf hash"
                path = [bytes.fromhex(x) for x in p["audit_path"]]
                root = root_from_path(h, p["leaf_index"], p["tree_size"], path)
                size, signed = checkpoint_root(p["checkpoint"])
                assert size == p["tree_size"], "checkpoint size"
                assert root == signed, "root %s != signed %s" % (root.hex(), signed.hex())
                print("ok inclusion", p["leaf_index"], p["tree_size"])
            else:
                proof = [bytes.fromhex(x) for x in p["proof"]]
                old_root = base64.b64decode(doc["old_root_b64"])
                old, new = roots_from_consistency(p["old_size"], p["new_size"], proof, old_root)
                size, signed = checkpoint_root(p["checkpoint"])
                assert old == old_root, "old root"
                if p["old_size"] == 0:
                    assert old_root == hashlib.sha256(b"").digest(), "empty tree root"
                    new = signed
                assert new == signed and size == p["new_size"], "new root"
                print("ok consistency", p["old_size"], p["new_size"])
        except (AssertionError, ValueError, IndexError, RecursionError) as e:
            failures += 1
            print("FAIL", doc["kind"], e)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
