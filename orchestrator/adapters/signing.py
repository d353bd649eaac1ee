"""Signed plans: a detached signature over the plan file's exact bytes, ed25519 or HMAC-SHA256.

The plan's own hash only detects accidental edits (anyone who can edit the file can re-hash it). A signature
made with a key the editor does not hold proves that the plan apply runs is the one that was reviewed.

A key is a file path or ``env:NAME`` (the key text in an environment variable). A PEM ed25519 private key
signs (and verifies); a PEM public key only verifies; anything else is an HMAC secret (16 bytes or more).
The signature file ``PLAN.sig`` is JSON: ``{"algorithm", "key_id", "signature"}`` (signature in base64).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from orchestrator.errors import InputError
from orchestrator.loading import parse_json, read_bytes

MIN_SECRET = 16


class SignatureError(InputError):
    """A key that cannot be read, or a signature that is missing or does not verify."""


@dataclass(frozen=True)
class Key:
    algorithm: str  # "ed25519" or "hmac-sha256"
    key_id: str
    private: Ed25519PrivateKey | None = None
    public: Ed25519PublicKey | None = None
    secret: bytes = b""


def signature_path(plan: Path) -> Path:
    return plan.with_name(plan.name + ".sig")


def load_key(spec: str) -> Key:
    """Read a key from a file or ``env:NAME``; one line naming the source on any problem."""
    where = f"key {spec}"
    if spec.startswith("env:"):
        value = os.environ.get(spec[4:])
        if not value:
            raise SignatureError(where, f"environment variable {spec[4:]} is not set or empty")
        raw = value.encode("utf-8")
    else:
        raw = read_bytes(Path(spec), lambda _, problem: SignatureError(where, problem), "key", limit=64 * 1024)
    text = raw.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            if b"PRIVATE KEY" in text:
                private = serialization.load_pem_private_key(text, password=None)
                if not isinstance(private, Ed25519PrivateKey):
                    raise SignatureError(where, "a private key, but not ed25519")
                return _ed25519(private.public_key(), private)
            public = serialization.load_pem_public_key(text)
        except ValueError as exc:
            raise SignatureError(where, f"not a readable PEM key ({exc})") from exc
        if not isinstance(public, Ed25519PublicKey):
            raise SignatureError(where, "a public key, but not ed25519")
        return _ed25519(public, None)
    if len(text) < MIN_SECRET:
        raise SignatureError(where, f"an HMAC secret needs at least {MIN_SECRET} bytes (this one has {len(text)})")
    return Key("hmac-sha256", "hmac:" + hashlib.sha256(b"key-id" + text).hexdigest()[:16], secret=text)


def _ed25519(public: Ed25519PublicKey, private: Ed25519PrivateKey | None) -> Key:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Key("ed25519", "ed25519:" + hashlib.sha256(raw).hexdigest()[:16], private=private, public=public)


def sign(data: bytes, key: Key) -> str:
    """The signature file's text for ``data``."""
    if key.algorithm == "ed25519":
        if key.private is None:
            raise SignatureError(f"key {key.key_id}", "a public key cannot sign; give the private key")
        sig = key.private.sign(data)
    else:
        sig = hmac.new(key.secret, data, hashlib.sha256).digest()
    return json.dumps({"algorithm": key.algorithm, "key_id": key.key_id,
                       "signature": base64.b64encode(sig).decode("ascii")}, indent=2) + "\n"


def verify(data: bytes, signature_text: str, key: Key, where: str) -> None:
    """Raise SignatureError unless ``signature_text`` is a valid signature of ``data`` under ``key``."""
    try:
        doc = parse_json(signature_text, where, SignatureError)
        algorithm, key_id = str(doc["algorithm"]), str(doc["key_id"])
        sig = base64.b64decode(str(doc["signature"]), validate=True)
    except SignatureError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureError(where, "not a plan signature file") from exc
    if algorithm != key.algorithm or key_id != key.key_id:
        raise SignatureError(where, f"signed with {key_id} ({algorithm}), not with the given key {key.key_id}")
    if key.algorithm == "ed25519":
        assert key.public is not None
        try:
            key.public.verify(sig, data)
        except InvalidSignature:
            raise SignatureError(where, "the signature does not match the plan: it was changed after signing") from None
        return
    if not hmac.compare_digest(sig, hmac.new(key.secret, data, hashlib.sha256).digest()):
        raise SignatureError(where, "the signature does not match the plan: it was changed after signing")
