#!/usr/bin/env python3
"""A jamgate meter written from docs/protocol.md alone (a clean-room interop check).

    device.py keygen --seed-hex <64 hex>
    device.py run --seed-hex <64 hex> --host H --port P [--cafile ca.pem]
                  [--count N] [--first-seq S] [--timeout-s T]

Dependencies: Debian's python3-paho-mqtt (1.6, v1 API), python3-cbor2, python3-nacl; BLAKE2b
from hashlib. "§" below names a section of docs/protocol.md.

`run` connects (MQTT 3.1.1, TLS with --cafile), subscribes to its down topics, publishes N
`meter.reading` envelopes (seqs S..S+N-1) and waits for their receipts, sends seq S again and
expects JG_ERR_ENVELOPE_REPLAY, sends a payload that is not CBOR and expects an error with seq
null, disconnects, and prints one JSON line. Exit 0: every expectation held; 1: one did not (the
reason on stderr); 2: the gateway refused the CONNECT (its CONNACK code on stderr).
"""
import argparse
import base64
import hashlib
import json
import signal
import ssl
import struct
import sys
import time

import cbor2
import paho.mqtt.client as mqtt
from nacl.signing import SigningKey

KIND = "meter.reading"
TOKEN_DOMAIN = b"jamgate/mqtt-auth/v1\x00"  # § The password: 20 octets and a zero octet
ENVELOPE_DOMAIN = b"jamgate/envelope/v1\x00"  # § Signed bytes: 19 octets and a zero octet
TOKEN_LIFETIME_MS = 3_600_000  # § The password: "expiring soon (the SDK: an hour ahead)"
KEEPALIVE_S = 60  # § CONNECT: keep alive 1 to 1,200 s
READINGS_PER_ENVELOPE = 5
STEP_MS = 200  # 5 readings a second; the counters then rise at 18 kW import, 3.6 kW export


# ---- keys (§ Identity) ----------------------------------------------------------------------

def signing_key(seed_hex):
    seed = bytes.fromhex(seed_hex)  # ValueError if not hex
    if len(seed) != 32:
        raise ValueError("--seed-hex must be 64 hex digits (a 32-byte Ed25519 seed)")
    return SigningKey(seed)  # RFC 8032 pure Ed25519; the seed is the secret key


def device_id(public_key):
    # § Identity: first 16 bytes of BLAKE2b-256 (a 32-byte digest, no key), 32 lowercase hex.
    return hashlib.blake2b(public_key, digest_size=32).digest()[:16].hex()


# ---- the MQTT password (§ The password: a signed token) ---------------------------------------

def token(sk, did, expires_at_ms):
    # 61 signed bytes: domain (21) ⌢ device id as 32 ASCII hex digits ⌢ u64le(expiresAtMs).
    msg = TOKEN_DOMAIN + did.encode("ascii") + struct.pack("<Q", expires_at_ms)
    sig = sk.sign(msg).signature
    # base64url (RFC 4648 §5) without padding: 86 characters.
    b64 = base64.urlsafe_b64encode(sig).rstrip(b"=").decode("ascii")
    return f"v1.{expires_at_ms}.{b64}"


# ---- body (§ Readings in a body, column form) -------------------------------------------------

def column_body(readings):
    # {t0, dtMs, cols: {name: [first value, Δ1, Δ2, …]}}: needs >= 2 readings with the same keys,
    # integer values and a steady step of t. `t` itself is not a column (worked example).
    assert len(readings) >= 2
    dt = readings[1]["t"] - readings[0]["t"]
    assert dt >= 1
    assert all(b["t"] - a["t"] == dt for a, b in zip(readings, readings[1:]))
    names = [k for k in readings[0] if k != "t"]
    cols = {}
    for name in names:
        vals = [r[name] for r in readings]
        cols[name] = [vals[0]] + [b - a for a, b in zip(vals, vals[1:])]
    return cbor2.dumps({"t0": readings[0]["t"], "dtMs": dt, "cols": cols})


def meter_readings(env_index, count, now_ms):
    # A few readings STEP_MS apart, the run's last one at now. The counters are a function of
    # the time (import 1 Wh a step, export 1 Wh every 5 steps), so they rise within a run and
    # from one run to the next (the energy-trading service refuses counters that go back,
    # JG_ERR_ENERGY_COUNTER). A run's readings span N s: the next run's must not start earlier
    # than this one's end, so on that service runs of N envelopes need to be N s apart.
    total = count * READINGS_PER_ENVELOPE
    out = []
    for j in range(READINGS_PER_ENVELOPE):
        i = env_index * READINGS_PER_ENVELOPE + j  # index over all readings of the run
        t = now_ms - (total - 1 - i) * STEP_MS
        steps = (t - 1_700_000_000_000) // STEP_MS  # since 2023-11: below 2^32 until 2050
        out.append({"t": t, "importWh": steps, "exportWh": steps // 5})
    return out


# ---- envelope (§ Signed bytes, § Envelopes) ---------------------------------------------------

def signed_bytes(did, seq, kind, t_ms, body):
    # § Signed bytes: domain ⌢ 01 ⌢ 20 ⌢ id (32 ASCII) ⌢ u64le(seq) ⌢ u8(len kind) ⌢ kind
    #                 ⌢ u64le(t) ⌢ u32le(len body) ⌢ body.
    k = kind.encode("ascii")
    return (ENVELOPE_DOMAIN + b"\x01" + b"\x20" + did.encode("ascii")
            + struct.pack("<Q", seq) + bytes([len(k)]) + k
            + struct.pack("<Q", t_ms) + struct.pack("<I", len(body)) + body)


def envelope(sk, did, seq, kind, t_ms, body):
    # § Envelopes: a CBOR map of exactly v, d, s, k, t, b, sig (written in that order, shortest
    # heads; cbor2 writes integers >= 2^32 as major type 0 with an 8-byte argument, bytes untagged).
    sig = sk.sign(signed_bytes(did, seq, kind, t_ms, body)).signature
    env = cbor2.dumps({"v": 1, "d": did, "s": seq, "k": kind, "t": t_ms, "b": body, "sig": sig})
    assert len(body) <= 65_280 and len(env) <= 65_536
    return env


# ---- the session --------------------------------------------------------------------------

class Failure(Exception):
    pass


class Refused(Exception):
    pass


class Device:
    def __init__(self, sk, host, port, cafile, deadline):
        self.sk = sk
        self.did = device_id(bytes(sk.verify_key))
        self.deadline = deadline
        self.connack = None
        self.disconnected = False
        self.subacks = {}   # mid -> granted qos
        self.pubacks = set()  # mids
        self.receipts = []  # seqs, as received (at least once: may repeat)
        self.errors = []    # {"s", "c", "m"}, as received
        # § CONNECT: MQTT 3.1.1, client id = the device id, clean session 0, no will.
        c = mqtt.Client(client_id=self.did, clean_session=False, protocol=mqtt.MQTTv311)
        # § CONNECT: username = device id; password = a fresh token (§ The password).
        c.username_pw_set(self.did, token(sk, self.did, int(time.time() * 1000) + TOKEN_LIFETIME_MS))
        if cafile:
            # § Listeners: MQTT over TLS; verify the server's certificate (and name) against the CA.
            c.tls_set(ca_certs=cafile, cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = lambda cl, u, mid, granted: self.subacks.__setitem__(mid, granted[0])
        c.on_publish = lambda cl, u, mid: self.pubacks.add(mid)
        c.on_message = self._on_message
        self.client = c
        self.host, self.port = host, port

    def _on_connect(self, client, userdata, flags, rc):
        self.connack = rc

    def _on_disconnect(self, client, userdata, rc):
        self.disconnected = True

    def _on_message(self, client, userdata, msg):
        # § Receipts and errors: CBOR maps; key them by seq (QoS 1, at least once).
        try:
            m = cbor2.loads(msg.payload)
        except Exception as e:  # not ours to judge; note it and go on
            print(f"undecodable message on {msg.topic}: {e}", file=sys.stderr)
            return
        if msg.topic == f"devices/{self.did}/down/receipts":
            s = m["s"]  # an array of seqs; older gateways sent a single seq
            self.receipts.extend(s if isinstance(s, list) else [s])
        elif msg.topic == f"devices/{self.did}/down/errors":
            self.errors.append({"s": m["s"], "c": m["c"], "m": m.get("m")})

    def pump(self, done, what):
        # Run the network loop until done() or the overall deadline.
        while not done():
            if self.disconnected:
                raise Failure(f"connection closed while waiting for {what}")
            if time.monotonic() > self.deadline:
                raise Failure(f"timed out waiting for {what}")
            self.client.loop(timeout=0.05)

    def connect(self):
        self.client.connect(self.host, self.port, keepalive=KEEPALIVE_S)
        self.pump(lambda: self.connack is not None, "CONNACK")
        if self.connack != 0:  # § CONNACK: 2, 3, 4, 5 or 6
            raise Refused(self.connack)

    def subscribe(self):
        # § Topics: devices/<id>/down/# at QoS 1, before the first PUBLISH.
        rc, mid = self.client.subscribe(f"devices/{self.did}/down/#", qos=1)
        self.pump(lambda: mid in self.subacks, "SUBACK")
        if self.subacks[mid] != 1:
            raise Failure(f"SUBACK granted {self.subacks[mid]}, not QoS 1")

    def publish(self, payload):
        # § Topics: devices/<id>/up/<kind>, QoS 1, retain 0. Returns the mid to await its PUBACK.
        info = self.client.publish(f"devices/{self.did}/up/{KIND}", payload, qos=1, retain=False)
        return info.mid

    def disconnect(self):
        if self.connack != 0 or self.disconnected:
            return
        self.client.disconnect()
        end = min(self.deadline, time.monotonic() + 2)
        while not self.disconnected and time.monotonic() < end:
            self.client.loop(timeout=0.05)


def run(args):
    deadline = time.monotonic() + args.timeout_s
    sk = signing_key(args.seed_hex)
    dev = Device(sk, args.host, args.port, args.cafile, deadline)
    seqs = list(range(args.first_seq, args.first_seq + args.count))
    result = {"deviceId": dev.did, "receipts": [], "errors": [], "ok": False}
    code = 1

    # The overall bound also covers calls that block inside paho (TCP connect, TLS handshake).
    def on_alarm(signum, frame):
        raise Failure(f"--timeout-s {args.timeout_s} reached")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, args.timeout_s)
    try:
        dev.connect()
        dev.subscribe()

        # 1. N envelopes, seqs S..S+N-1; each settled by a receipt (§ Receipts and errors).
        now_ms = int(time.time() * 1000)
        envs = {}
        mids = []
        for i, seq in enumerate(seqs):
            body = column_body(meter_readings(i, len(seqs), now_ms))
            envs[seq] = envelope(sk, dev.did, seq, KIND, now_ms, body)
            mids.append(dev.publish(envs[seq]))
        # A PUBACK alone does not mean accepted (§ What the gateway does with a PUBLISH).
        dev.pump(lambda: all(m in dev.pubacks for m in mids), "PUBACKs")

        def settled():
            bad = [e for e in dev.errors if e["s"] in seqs]
            if bad:
                raise Failure(f"refused: {bad}")
            return set(seqs) <= set(dev.receipts)
        dev.pump(settled, "receipts")

        # 2. The envelope of seq S again: JG_ERR_ENVELOPE_REPLAY with seq S (§ Seqs, gateway window).
        n = len(dev.errors)
        mid = dev.publish(envs[seqs[0]])
        dev.pump(lambda: mid in dev.pubacks
                 and any(e["s"] == seqs[0] for e in dev.errors[n:]), "the replay's error")
        got = [e["c"] for e in dev.errors[n:] if e["s"] == seqs[0]]
        if got[0] != "JG_ERR_ENVELOPE_REPLAY":
            raise Failure(f"resend of seq {seqs[0]} answered {got[0]}, not JG_ERR_ENVELOPE_REPLAY")

        # 3. A payload that is not CBOR: an error whose s is null (§ Receipts and errors).
        #    0xff is the "break" stop code, well-formed only inside an indefinite-length item
        #    (RFC 8949 §3.2.1), so no CBOR item starts with it.
        n = len(dev.errors)
        mid = dev.publish(b"\xffnot cbor")
        dev.pump(lambda: mid in dev.pubacks and any(e["s"] is None for e in dev.errors[n:]),
                 "an error with seq null")

        dev.disconnect()
        result["ok"] = True
        code = 0
    except Refused as e:
        print(f"CONNACK {e.args[0]}: connection refused", file=sys.stderr)
        code = 2
    except (Failure, OSError, ssl.SSLError) as e:
        print(f"failed: {e}", file=sys.stderr)
        dev.disconnect()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        # With clean session 0 the session also delivers answers to earlier runs' envelopes
        # (§ Topics); report only this run's seqs (and null), and note the rest on stderr.
        mine = [e for e in dev.errors if e["s"] is None or e["s"] in seqs]
        stale = sorted(set(r for r in dev.receipts if r not in seqs))
        stale_errors = [e for e in dev.errors if e not in mine]
        if stale or stale_errors:
            print(f"note: from earlier runs: receipts {stale}, errors {stale_errors}", file=sys.stderr)
        result["receipts"] = sorted(set(r for r in dev.receipts if r in seqs))
        result["errors"] = [{"s": e["s"], "c": e["c"]} for e in mine]
        print(json.dumps(result))
    return code


def keygen(args):
    sk = signing_key(args.seed_hex)
    pk = bytes(sk.verify_key)
    print(json.dumps({"deviceId": device_id(pk), "publicKey": pk.hex()}))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen", help="print the device id and public key of a seed")
    k.add_argument("--seed-hex", required=True)
    r = sub.add_parser("run", help="connect, publish, check receipts and errors")
    r.add_argument("--seed-hex", required=True)
    r.add_argument("--host", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--cafile")
    r.add_argument("--count", type=int, default=3)
    r.add_argument("--first-seq", type=int, default=0)
    r.add_argument("--timeout-s", type=float, default=60)
    args = p.parse_args()
    try:
        signing_key(args.seed_hex)
    except ValueError as e:
        p.error(str(e))
    if args.cmd == "run" and args.count < 1:
        p.error("--count must be at least 1")
    return keygen(args) if args.cmd == "keygen" else run(args)


if __name__ == "__main__":
    sys.exit(main())
