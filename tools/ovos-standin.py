#!/usr/bin/env python3
"""A stand-in for a stock OpenVoiceOS assistant's bus transport, to measure
the gateway's latency on a bus that behaves like the real one.

Not part of the gateway and not used by any test: a session-level tool
(docs/PERFORMANCE.md, "On a stock OVOS bus"). Needs Debian's python3-tornado
for the bus (run it with /usr/bin/python3); the peer and the client use only
the standard library.

  ovos-standin.py bus    [--port 8181]
      A tornado websocket relay on /core, written like ovos-messagebus 0.0.10's
      MessageBusEventHandler: it sends "connected" on open and writes every
      frame to every peer, the sender included, leaving Nagle's algorithm on
      (tornado's default; ovos-messagebus never calls set_nodelay).

  ovos-standin.py peer   [--url ws://127.0.0.1:8181/core] [--think-ms 0]
                         [--no-quickack]
      A peer that answers "hello" the way ovos-core 2.0 with an Adapt skill
      does (testdata/ovos-wire/intent-handled.jsonl): on an utterance it sends
      <skill>.activate and the intent message; on reading that intent message
      back from the bus (the skill is a separate listener on the same
      connection, as in ovos-core) it sends mycroft.skill.handler.start,
      speak, mycroft.skill.handler.complete and ovos.utterance.handled, in a
      burst, each reply routed to the utterance's source and session. Its
      socket has TCP_NODELAY, as websocket-client (ovos-bus-client's
      transport) sets it. It sets TCP_QUICKACK before every read, unless
      --no-quickack: a stock Python peer does not, and then its own hop (the
      intent message coming back to the skill) waits on its delayed ACKs
      about 40 ms, which the real assistant measured in issue 16 did not
      show; with it, what is left to wait on is between the bus and the
      client under test.

  ovos-standin.py client [--url ...] [-n 200] [--interval-ms 50] [--trace]
                         [--nagle] [--quickack]
      A raw bus client timing an utterance from its write to the read of its
      speak, one at a time: TCP_NODELAY unless --nagle, and with --quickack
      TCP_QUICKACK set again before every read; one utterance every
      --interval-ms, start to start (as gatewaybench -rate paces them).
      Prints p50/p90/p99/mean; --trace prints when each frame was read.
"""

import argparse
import base64
import json
import os
import socket
import statistics
import struct
import sys
import time

SKILL = "hello-intent.peers"

# ovos-core expands the session; every reply carries the expanded one
# (about 1.1 KB), which is what makes the real frames 1.3-1.8 KB.
SESSION = {
    "active_skills": [[SKILL, 1795638741.3194752]],
    "utterance_states": {},
    "session_id": "",
    "lang": "en-US",
    "context": {"timeout": 120, "frame_stack": []},
    "site_id": "unknown",
    "pipeline": [
        "ovos-stop-pipeline-plugin-high", "ovos-converse-pipeline-plugin",
        "ovos-ocp-pipeline-plugin-high", "ovos-padatious-pipeline-plugin-high",
        "ovos-adapt-pipeline-plugin-high", "ovos-m2v-pipeline-high",
        "ovos-ocp-pipeline-plugin-medium", "ovos-fallback-pipeline-plugin-high",
        "ovos-stop-pipeline-plugin-medium", "ovos-adapt-pipeline-plugin-medium",
        "ovos-fallback-pipeline-plugin-medium", "ovos-fallback-pipeline-plugin-low",
    ],
    "location": {
        "city": {"code": "Lawrence", "name": "Lawrence",
                 "state": {"code": "KS", "name": "Kansas",
                           "country": {"code": "US", "name": "United States"}}},
        "coordinate": {"latitude": 38.971669, "longitude": -95.23525},
        "timezone": {"code": "America/Chicago", "name": "Central Standard Time",
                     "dstOffset": 3600000, "offset": -21600000},
    },
    "system_unit": "metric", "time_format": "half", "date_format": "MDY",
    "is_speaking": False, "is_recording": False,
    "blacklisted_skills": ["skill-ovos-stop.openvoiceos"],
    "blacklisted_intents": [],
}


def run_bus(args):
    from tornado import ioloop, web
    from tornado.websocket import WebSocketHandler

    peers = []

    class Handler(WebSocketHandler):
        # As ovos_messagebus.event_handler.MessageBusEventHandler, without
        # its filter (off by default) and its pyee emitter (no listeners).
        def open(self):
            self.write_message(json.dumps(
                {"type": "connected", "data": {},
                 "context": {"session": {"session_id": "default"}}}))
            peers.append(self)

        def on_message(self, message):
            for p in peers:
                p.write_message(message)

        def on_close(self):
            peers.remove(self)

        def check_origin(self, origin):
            return True

    app = web.Application([("/core", Handler)],
                          websocket_max_message_size=25 * 1024 * 1024)
    app.listen(args.port, "127.0.0.1")
    print(f"bus on ws://127.0.0.1:{args.port}/core (Nagle on)", flush=True)
    ioloop.IOLoop.current().start()


def run_peer(args):
    c = RawClient(args.url, nagle=False, quickack=not args.no_quickack)
    print(f"peer on {args.url} (quickack={not args.no_quickack})", flush=True)

    def emit(typ, data, ctx):
        c.send(json.dumps({"type": typ, "data": data, "context": ctx}))

    def reply_context(ctx):
        # message.reply: source and destination swapped; session expanded.
        sess = dict(SESSION)
        sess["session_id"] = ctx.get("session", {}).get("session_id", "default")
        out = dict(ctx)
        out["source"], out["destination"] = ctx.get("destination"), ctx.get("source")
        out["session"] = sess
        return out

    def on_utterance(msg):
        if args.think_ms:
            time.sleep(args.think_ms / 1000)
        data, ctx = msg.get("data", {}), reply_context(msg.get("context", {}))
        ctx = dict(ctx, lang=data.get("lang", "en-US"), skill_id=SKILL)
        emit(SKILL + ".activate", {}, ctx)
        utt = (data.get("utterances") or [""])[0]
        intent = dict(data)
        intent.update({
            "intent_type": SKILL + ":HelloIntent",
            "hello_intent_peersHello": "hello", "target": None,
            "confidence": 0.45454545454545453,
            "__tags__": [{"match": "hello", "key": "hello", "start_token": 0,
                          "entities": [{"key": "hello", "match": "hello",
                                        "data": [["hello", "hello_intent_peersHello"]],
                                        "confidence": 1.0}],
                          "end_token": 0, "from_context": False}],
            "utterance": utt,
        })
        emit(SKILL + ":HelloIntent", intent, ctx)

    def on_intent(msg):
        ctx, lang = msg["context"], msg["data"].get("lang", "en-US")
        name = {"name": "HelloSkill.handle_hello"}
        emit("mycroft.skill.handler.start", name, ctx)
        emit("speak", {"utterance": "Hello there!", "expect_response": False,
                       "meta": {"skill": SKILL, "dialog": "hello", "data": {}},
                       "lang": lang}, ctx)
        emit("mycroft.skill.handler.complete", name, ctx)
        emit("ovos.utterance.handled", {}, ctx)

    while True:
        op, raw = c.recv()
        if op == 9:  # ping
            c.send(raw.decode(errors="replace"), opcode=0xA)
            continue
        if op != 1:
            continue
        try:
            msg = json.loads(raw)
        except ValueError:
            continue
        typ = msg.get("type")
        if typ == "recognizer_loop:utterance":
            on_utterance(msg)
        elif typ == SKILL + ":HelloIntent":
            on_intent(msg)


class RawClient:
    """A minimal websocket client on a plain socket, so that every read can
    be preceded by TCP_QUICKACK."""

    def __init__(self, url, nagle, quickack):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port or 80)))
        if not nagle:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.quickack = quickack
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise SystemExit(f"handshake: {head[:80]!r}")

    def _fill(self):
        if self.quickack:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        b = self.sock.recv(65536)
        if not b:
            raise EOFError
        self.buf += b

    def _need(self, n):
        while len(self.buf) < n:
            self._fill()

    def send(self, text, opcode=0x1):
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def recv(self):
        self._need(2)
        b1 = self.buf[1] & 0x7F
        off = 2
        if b1 == 126:
            self._need(4)
            b1, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif b1 == 127:
            self._need(10)
            b1, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + b1)
        op = self.buf[0] & 0x0F
        data, self.buf = self.buf[off:off + b1], self.buf[off + b1:]
        return op, data


def run_client(args):
    c = RawClient(args.url, args.nagle, args.quickack)
    source = "raw-client"
    took = []
    for i in range(args.warmup + args.n):
        sid = f"raw-{os.getpid()}-{i}"
        frame = json.dumps({
            "type": "recognizer_loop:utterance",
            "data": {"utterances": ["hello there"], "lang": "en-us"},
            "context": {"source": source, "destination": ["skills"],
                        "session": {"session_id": sid}}})
        t0 = time.perf_counter()
        c.send(frame)
        seen = []
        while True:
            op, data = c.recv()
            if op != 1:
                continue
            m = json.loads(data)
            seen.append((m.get("type"), (time.perf_counter() - t0) * 1000))
            if (m.get("type") == "speak"
                    and m.get("context", {}).get("destination") == source
                    and m["context"].get("session", {}).get("session_id") == sid):
                break
        dt = (time.perf_counter() - t0) * 1000
        if i >= args.warmup:
            took.append(dt)
        if args.trace:
            print(" ".join(f"{t}@{ms:.2f}" for t, ms in seen), flush=True)
        # One utterance every --interval-ms, start to start, as
        # gatewaybench -rate paces them (the rest of the answer is read, or
        # skipped, before the next).
        time.sleep(max(0, t0 + args.interval_ms / 1000 - time.perf_counter()))
    took.sort()
    q = lambda p: took[min(len(took) - 1, int(p * len(took)))]
    print(f"n={len(took)} nagle={args.nagle} quickack={args.quickack} "
          f"write->speak ms: p50 {statistics.median(took):.2f} p90 {q(0.9):.2f} "
          f"p99 {q(0.99):.2f} max {took[-1]:.2f} mean {statistics.mean(took):.2f}",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bus")
    b.add_argument("--port", type=int, default=8181)
    p = sub.add_parser("peer")
    p.add_argument("--url", default="ws://127.0.0.1:8181/core")
    p.add_argument("--think-ms", type=float, default=0)
    p.add_argument("--no-quickack", action="store_true",
                   help="read like a stock Python peer: its own hop then waits on delayed ACKs")
    c = sub.add_parser("client")
    c.add_argument("--url", default="ws://127.0.0.1:8181/core")
    c.add_argument("-n", type=int, default=200)
    c.add_argument("--warmup", type=int, default=10)
    c.add_argument("--interval-ms", type=float, default=50)
    c.add_argument("--nagle", action="store_true")
    c.add_argument("--quickack", action="store_true")
    c.add_argument("--trace", action="store_true",
                   help="print when each frame of each utterance was read")
    args = ap.parse_args()
    {"bus": run_bus, "peer": run_peer, "client": run_client}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
