#!/usr/bin/env python3
"""Network impairer for the lab tests: delay, jitter, loss and cuts on one NFQUEUE queue.

Python 3.11 standard library only. One process serves one queue, which is one direction of
one link. Each queued packet is held for ``delay + uniform(-jitter, +jitter)`` ms, never
reordered (a release time is max(its own, the previous one)), then accepted or dropped by
the loss model. While ``--cut-file`` exists every packet is dropped. Lost packets are
dropped as soon as they arrive (same outcome, frees the kernel queue slot early).

Attaching (in the namespace that RECEIVES the traffic; the raw table runs before conntrack
and before routing, so every packet is seen, even those conntrack would call INVALID)::

    ip netns exec B python3 impair.py --queue 7 --delay 50 --loss 2 &
    ip netns exec B iptables -t raw -A PREROUTING -i IF -j NFQUEUE --queue-num 7

``--queue-bypass`` accepts packets when no process is bound to the queue. Leave it OFF in
tests that assert impairment: a dead impairer then black-holes traffic (visible) instead of
silently letting it through unimpaired. Use it only for ad-hoc labs that must survive the
impairer. Start the impairer before adding the rule when not using it.

Netlink layouts used (all structs in host byte order unless marked "be" = big-endian):

* nlmsghdr  (16 bytes): u32 len, u16 type, u16 flags, u32 seq, u32 portid.
  type = (NFNL_SUBSYS_QUEUE=3) << 8 | NFQNL_MSG_{PACKET=0, VERDICT=1, CONFIG=2}.
* nfgenmsg  (4 bytes, follows nlmsghdr): u8 family, u8 version (0), be16 res_id = queue.
* nlattr    (4 bytes + payload, padded to 4): u16 len (incl. header), u16 type.
* CONFIG attributes: NFQA_CFG_CMD=1 {u8 cmd, u8 pad, be16 pf} (cmd BIND=1, PF_BIND=3);
  NFQA_CFG_PARAMS=2 {be32 copy_range, u8 copy_mode} (packed, 5 bytes; mode META=1 means
  no payload copied); NFQA_CFG_QUEUE_MAXLEN=3 be32; NFQA_CFG_MASK=4 be32 and
  NFQA_CFG_FLAGS=5 be32 (FAIL_OPEN=1: accept instead of drop when the queue is full).
* PACKET: attribute NFQA_PACKET_HDR=1 {be32 packet_id, be16 hw_protocol, u8 hook}.
* VERDICT: attribute NFQA_VERDICT_HDR=2 {be32 verdict (NF_DROP=0, NF_ACCEPT=1), be32 id}.
  Several verdict messages are concatenated in one send() (netlink_rcv_skb walks them all).
* NLMSG_ERROR=2: {s32 error (-errno, 0 = ack), original nlmsghdr...}.
"""
import argparse
import collections
import errno
import json
import math
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
SO_RCVBUFFORCE = 33          # root may exceed net.core.rmem_max with this one
NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 2, 3, 4
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_PF_BIND = 1, 3
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1
NF_DROP, NF_ACCEPT = 0, 1

NLMSG = struct.Struct("=IHHII")
NFGEN = struct.Struct("!BBH")    # the u8s are order-free; res_id is big-endian
NLATTR = struct.Struct("=HH")
BE32 = struct.Struct("!I")


# ---------------------------------------------------------------- pure logic (unit-tested)

class NoLoss:
    mean_loss = 0.0

    def lost(self):
        return False


class Bernoulli:
    """Each packet lost independently with probability percent/100."""

    def __init__(self, percent, rng):
        if not 0 <= percent <= 100:
            raise ValueError("loss percent must be in [0, 100]")
        self.p, self.rng, self.mean_loss = percent / 100.0, rng, percent / 100.0

    def lost(self):
        return self.rng.random() < self.p


class GilbertElliott:
    """Two-state Markov loss: p = P(good->bad), r = P(bad->good) per packet; a packet is
    lost with probability 1-k in the good state and 1-h in the bad state.

    Stationary P(bad) = p / (p + r), so mean loss = (r(1-k) + p(1-h)) / (p + r).
    The state a packet sees decides its fate, then the chain steps once.
    """

    def __init__(self, p, r, h, k, rng):
        for name, v in (("p", p), ("r", r), ("h", h), ("k", k)):
            if not 0 <= v <= 1:
                raise ValueError(f"Gilbert-Elliott {name} must be in [0, 1]")
        if p + r == 0:
            raise ValueError("p and r cannot both be 0")
        self.p, self.r, self.h, self.k, self.rng = p, r, h, k, rng
        self.bad = False
        self.mean_loss = (r * (1 - k) + p * (1 - h)) / (p + r)

    @classmethod
    def from_burst(cls, loss_percent, burst_len, rng):
        """Simple Gilbert model (k=1: no loss when good, h=0: all lost when bad) for a
        target mean loss L and mean burst length N (consecutive losses).

        A bad run lasts Geometric(r) packets, so N = 1/r  ->  r = 1/N.
        P(bad) = p/(p+r) = L  ->  p = L*r/(1-L) = L / (N(1-L)); needs L <= N/(N+1).
        """
        L = loss_percent / 100.0
        if burst_len < 1 or not 0 <= L < 1:
            raise ValueError("need burst length >= 1 and 0 <= loss < 100%")
        r = 1.0 / burst_len
        p = L * r / (1 - L)
        if p > 1:
            raise ValueError(f"loss {loss_percent}% unreachable with mean burst {burst_len}")
        return cls(p, r, 0.0, 1.0, rng)

    def lost(self):
        rnd = self.rng.random
        lost = rnd() < ((1 - self.h) if self.bad else (1 - self.k))
        if self.bad:
            if rnd() < self.r:
                self.bad = False
        elif rnd() < self.p:
            self.bad = True
        return lost


class ReleaseScheduler:
    """Release time = max(arrival + max(0, delay + U(-jitter, jitter)), previous release):
    jitter changes spacing but never the order, so a FIFO deque of pending packets
    stays sorted by release time."""

    def __init__(self, delay_ms, jitter_ms, rng):
        if delay_ms < 0 or jitter_ms < 0:
            raise ValueError("delay and jitter must be >= 0")
        self.delay, self.jitter, self.rng = delay_ms / 1000.0, jitter_ms / 1000.0, rng
        self.last = -math.inf

    def release_time(self, arrival):
        hold = self.delay
        if self.jitter:
            hold += self.rng.uniform(-self.jitter, self.jitter)
        self.last = max(arrival + max(0.0, hold), self.last)
        return self.last


class CutWatcher:
    """`path exists` re-checked at most every `period` seconds (cheap at high packet rates)."""

    def __init__(self, path, period=0.005):
        self.path, self.period, self.checked, self.state = path, period, -math.inf, False

    def active(self, now):
        if not self.path:
            return False
        if now - self.checked >= self.period:
            self.state, self.checked = os.path.exists(self.path), now
        return self.state


# ---------------------------------------------------------------- netlink plumbing

def nlattr(atype, payload):
    """One attribute, padded to a 4-byte boundary."""
    raw = NLATTR.pack(NLATTR.size + len(payload), atype) + payload
    return raw + b"\0" * (-len(raw) % 4)


def iter_messages(data):
    """Yield (type, seq, payload) for each nlmsghdr in one received datagram."""
    off, end = 0, len(data)
    while off + NLMSG.size <= end:
        length, mtype, _flags, seq, _pid = NLMSG.unpack_from(data, off)
        if length < NLMSG.size or off + length > end:
            break
        yield mtype, seq, data[off + NLMSG.size:off + length]
        off += (length + 3) & ~3


def packet_id(payload):
    """Packet id from an NFQNL_MSG_PACKET payload (nfgenmsg, then attributes), or None."""
    off = NFGEN.size
    while off + NLATTR.size <= len(payload):
        alen, atype = NLATTR.unpack_from(payload, off)
        if alen < NLATTR.size:
            return None
        if atype & 0x3FFF == NFQA_PACKET_HDR:      # strip NLA_F_NESTED / NET_BYTEORDER
            return BE32.unpack_from(payload, off + NLATTR.size)[0]
        off += (alen + 3) & ~3
    return None


class NfQueue:
    def __init__(self, queue, rcvbuf, maxlen, fail_open):
        self.queue, self.seq, self.enobufs, self.nl_errors = queue, 0, 0, 0
        self.early_ids = []                 # packets that arrived while we were configuring
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        # Overflow: the kernel drops (or fail-open accepts) the packet and tells no one,
        # instead of making our next recv() fail with ENOBUFS.
        self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
        self.sock.settimeout(2.0)
        cmd = struct.Struct("!BBH")                     # u8 command, u8 pad, be16 pf
        self.config(socket.AF_INET, 0, nlattr(NFQA_CFG_CMD, cmd.pack(NFQNL_CFG_CMD_PF_BIND, 0, socket.AF_INET)))
        self.config(socket.AF_INET, queue, nlattr(NFQA_CFG_CMD, cmd.pack(NFQNL_CFG_CMD_BIND, 0, socket.AF_INET)))
        flags = NFQA_CFG_F_FAIL_OPEN if fail_open else 0
        self.config(socket.AF_UNSPEC, queue,
                    nlattr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
                    + nlattr(NFQA_CFG_QUEUE_MAXLEN, BE32.pack(maxlen))
                    + nlattr(NFQA_CFG_MASK, BE32.pack(NFQA_CFG_F_FAIL_OPEN))
                    + nlattr(NFQA_CFG_FLAGS, BE32.pack(flags)))
        self.sock.setblocking(False)
        # Everything in a verdict message but its last 8 bytes is the same for every packet.
        self.verdict_prefix = (NLMSG.pack(32, NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_VERDICT, NLM_F_REQUEST, 0, 0)
                               + NFGEN.pack(socket.AF_UNSPEC, 0, queue) + NLATTR.pack(12, NFQA_VERDICT_HDR))

    def config(self, family, res_id, attrs):
        """Send one NFQNL_MSG_CONFIG and wait (bounded) for its ack."""
        self.seq += 1
        body = NFGEN.pack(family, 0, res_id) + attrs
        self.sock.send(NLMSG.pack(NLMSG.size + len(body), NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_CONFIG,
                                  NLM_F_REQUEST | NLM_F_ACK, self.seq, 0) + body)
        for _ in range(100):
            for mtype, seq, payload in iter_messages(self.sock.recv(65536)):
                if mtype == NLMSG_ERROR and seq == self.seq:
                    err = -struct.unpack_from("=i", payload)[0]
                    if err:     # EPERM here mostly means another socket holds the queue
                        hint = " (queue already bound by another process?)" if err == errno.EPERM else ""
                        raise OSError(err, f"NFQUEUE config for queue {res_id}{hint}")
                    return
                if mtype == NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET:   # rule was there first
                    self.early_ids.append(packet_id(payload))
        raise OSError(errno.EPROTO, "no ack for NFQUEUE config")

    def receive(self, max_datagrams=512):
        """Drain up to max_datagrams without blocking; return the queued packet ids."""
        ids, self.early_ids = [i for i in self.early_ids if i is not None], []
        for _ in range(max_datagrams):
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS:   # only without NETLINK_NO_ENOBUFS; keep going
                    self.enobufs += 1
                    continue
                raise
            for mtype, _seq, payload in iter_messages(data):
                if mtype == NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET:
                    pid = packet_id(payload)
                    if pid is not None:
                        ids.append(pid)
                elif mtype == NLMSG_ERROR and struct.unpack_from("=i", payload)[0] != 0:
                    self.nl_errors += 1        # e.g. a verdict for an id the kernel forgot
        return ids

    def send_verdicts(self, verdicts):
        """verdicts: list of (packet_id, NF_ACCEPT|NF_DROP), sent 256 to a datagram."""
        prefix = self.verdict_prefix
        for i in range(0, len(verdicts), 256):
            buf = b"".join(prefix + struct.pack("!II", v, pid) for pid, v in verdicts[i:i + 256])
            try:
                self.sock.send(buf)
            except BlockingIOError:       # should not happen: kernel processes sends inline
                select.select([], [self.sock], [], 0.1)
                self.sock.send(buf)

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- main loop

def write_stats(path, stats):
    if path:
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(stats, f)
        os.replace(tmp, path)             # readers never see a half-written file


def make_loss_model(args, rng):
    if args.ge:
        p, r, h, k = (float(x) for x in args.ge.split(","))
        return GilbertElliott(p, r, h, k, rng)
    if args.burst_loss is not None:
        return GilbertElliott.from_burst(args.burst_loss, args.burst_len, rng)
    return Bernoulli(args.loss, rng) if args.loss else NoLoss()


def run(args):
    rng = random.Random(args.seed)
    loss = make_loss_model(args, rng)
    sched = ReleaseScheduler(args.delay, args.jitter, rng)
    cut = CutWatcher(args.cut_file)
    nfq = NfQueue(args.queue, args.rcvbuf, args.queue_maxlen, not args.no_fail_open)
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    pending = collections.deque()         # (release_time, packet_id), sorted by construction
    stats = {"packets": 0, "dropped": 0, "accepted": 0, "max_queue": 0}

    def snapshot():
        return dict(stats, pending=len(pending), enobufs=nfq.enobufs, nl_errors=nfq.nl_errors)

    write_stats(args.stats_file, snapshot())
    print(f"impair: queue {args.queue} bound (delay {args.delay}±{args.jitter} ms, "
          f"mean loss {loss.mean_loss:.2%})", file=sys.stderr, flush=True)
    start = time.monotonic()
    deadline = start + args.max_seconds if args.max_seconds > 0 else math.inf
    next_stats = start + 1.0
    now = start
    while not stop and now < deadline:
        wake = min(next_stats, deadline, pending[0][0] if pending else math.inf)
        timeout = min(max(0.0, wake - now), 0.25)        # bounded: signals are seen quickly
        readable, _, _ = select.select([nfq.sock], [], [], timeout)
        now = time.monotonic()
        verdicts = []
        if readable or nfq.early_ids:
            for pid in nfq.receive():
                stats["packets"] += 1
                lost = loss.lost()                     # draw even during a cut: same sequence
                if lost or cut.active(now):
                    verdicts.append((pid, NF_DROP))
                else:
                    pending.append((sched.release_time(now), pid))
            stats["max_queue"] = max(stats["max_queue"], len(pending))
        while pending and pending[0][0] <= now:
            verdicts.append((pending.popleft()[1], NF_DROP if cut.active(now) else NF_ACCEPT))
        if verdicts:
            nfq.send_verdicts(verdicts)
            dropped = sum(1 for _, v in verdicts if v == NF_DROP)
            stats["dropped"] += dropped
            stats["accepted"] += len(verdicts) - dropped
        if now >= next_stats:
            write_stats(args.stats_file, snapshot())
            next_stats = now + 1.0
    # Closing the socket makes the kernel drop what we hold: release it instead.
    flush = [(pid, NF_ACCEPT) for _, pid in pending]
    nfq.send_verdicts(flush)
    stats["accepted"] += len(flush)
    pending.clear()
    write_stats(args.stats_file, snapshot())
    nfq.close()
    return 0


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queue", type=int, required=True, help="NFQUEUE queue number")
    ap.add_argument("--delay", type=float, default=0.0, help="one-way delay, ms")
    ap.add_argument("--jitter", type=float, default=0.0, help="uniform ± jitter, ms (never reorders)")
    model = ap.add_mutually_exclusive_group()
    model.add_argument("--loss", type=float, default=0.0, help="Bernoulli loss, percent")
    model.add_argument("--ge", metavar="p,r,h,k", help="Gilbert-Elliott parameters (probabilities)")
    model.add_argument("--burst-loss", type=float, metavar="PERCENT", help="mean loss of a simple Gilbert model")
    ap.add_argument("--burst-len", type=float, default=3.0, metavar="N", help="mean burst length for --burst-loss")
    ap.add_argument("--cut-file", help="drop everything while this file exists")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--stats-file", help="JSON stats, rewritten every second and at exit")
    ap.add_argument("--max-seconds", type=float, default=3600.0, help="hard runtime bound (0 = none)")
    ap.add_argument("--rcvbuf", type=int, default=8 << 20, help="netlink socket receive buffer, bytes")
    ap.add_argument("--queue-maxlen", type=int, default=8192, help="kernel queue length (default 1024)")
    ap.add_argument("--no-fail-open", action="store_true", help="drop, not accept, when the kernel queue is full")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except (OSError, ValueError) as e:
        print(f"impair: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
