"""Tests for impair.py. Run from the project root with either of:

    python3 -m unittest discover -s tests/netlab -v
    python3 -m unittest tests/netlab/test_impair.py -v

The pure tests need nothing. The live test needs root, `ip`, `iptables` (NFQUEUE target)
and `ping`; it builds two namespaces joined by a veth pair and is skipped otherwise.
"""
import json
import os
import random
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import impair  # noqa: E402


def burst_lengths(seq):
    """Lengths of the runs of consecutive True values."""
    runs, n = [], 0
    for lost in seq:
        if lost:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs + ([n] if n else [])


class LossModelTest(unittest.TestCase):
    def test_bernoulli_3_percent(self):
        model = impair.Bernoulli(3, random.Random(42))
        rate = sum(model.lost() for _ in range(100_000)) / 100_000
        self.assertAlmostEqual(rate, 0.03, delta=0.003)

    def test_bernoulli_edges(self):
        self.assertFalse(any(impair.Bernoulli(0, random.Random(1)).lost() for _ in range(1000)))
        self.assertTrue(all(impair.Bernoulli(100, random.Random(1)).lost() for _ in range(1000)))
        self.assertFalse(impair.NoLoss().lost())
        with self.assertRaises(ValueError):
            impair.Bernoulli(101, random.Random(1))

    def test_burst_model_hits_mean_loss_and_burst_length(self):
        for loss_pct, burst in ((5, 3), (10, 2), (2, 6), (20, 1.5)):
            with self.subTest(loss=loss_pct, burst=burst):
                model = impair.GilbertElliott.from_burst(loss_pct, burst, random.Random(7))
                self.assertAlmostEqual(model.mean_loss, loss_pct / 100, places=9)
                seq = [model.lost() for _ in range(400_000)]
                self.assertAlmostEqual(sum(seq) / len(seq), loss_pct / 100, delta=0.1 * loss_pct / 100)
                self.assertAlmostEqual(statistics.mean(burst_lengths(seq)), burst, delta=0.1 * burst)

    def test_general_gilbert_elliott_mean_loss(self):
        p, r, h, k = 0.02, 0.25, 0.3, 0.995
        model = impair.GilbertElliott(p, r, h, k, random.Random(3))
        expected = (r * (1 - k) + p * (1 - h)) / (p + r)
        self.assertAlmostEqual(model.mean_loss, expected, places=12)
        rate = sum(model.lost() for _ in range(400_000)) / 400_000
        self.assertAlmostEqual(rate, expected, delta=0.1 * expected)

    def test_unreachable_burst_parameters_are_refused(self):
        with self.assertRaises(ValueError):           # needs L <= N/(N+1) = 0.5
            impair.GilbertElliott.from_burst(60, 1, random.Random(1))
        with self.assertRaises(ValueError):
            impair.GilbertElliott(1.5, 0.1, 0, 1, random.Random(1))

    def test_same_seed_same_sequence(self):
        a = impair.GilbertElliott.from_burst(5, 3, random.Random(9))
        b = impair.GilbertElliott.from_burst(5, 3, random.Random(9))
        self.assertEqual([a.lost() for _ in range(5000)], [b.lost() for _ in range(5000)])


class SchedulerTest(unittest.TestCase):
    def test_release_times_monotonic_and_bounded(self):
        sched = impair.ReleaseScheduler(50, 30, random.Random(5))
        arrivals = [i * 0.001 for i in range(20_000)]           # 1000 packets/s
        releases = [sched.release_time(t) for t in arrivals]
        self.assertTrue(all(a <= b for a, b in zip(releases, releases[1:])), "reordered")
        for t, rel in zip(arrivals, releases):
            # never earlier than delay - jitter; FIFO can push later only up to the
            # previous packet's own max, which is below t + delay + jitter
            self.assertGreaterEqual(rel - t, 0.020 - 1e-9)
            self.assertLessEqual(rel - t, 0.080 + 1e-9)
        self.assertGreater(len(set(round(r - t, 6) for t, r in zip(arrivals, releases))), 100, "no jitter")

    def test_no_jitter_is_exact_delay(self):
        sched = impair.ReleaseScheduler(50, 0, random.Random(5))
        for t in (0.0, 0.001, 0.5, 0.5, 2.0):
            self.assertAlmostEqual(sched.release_time(t), t + 0.050)

    def test_jitter_larger_than_delay_never_releases_early(self):
        sched = impair.ReleaseScheduler(5, 20, random.Random(2))
        last = -1.0
        for i in range(5000):
            t = i * 0.0005
            rel = sched.release_time(t)
            self.assertGreaterEqual(rel, t)
            self.assertGreaterEqual(rel, last)
            last = rel


class WireFormatTest(unittest.TestCase):
    def test_parse_packet_message(self):
        hdr = impair.nlattr(impair.NFQA_PACKET_HDR, struct.pack("!IHB", 0xDEADBEEF, 0x0800, 0))
        self.assertEqual(len(hdr), 12)                              # 4 + 7, padded to 12
        other = impair.nlattr(9, b"\x01\x02")
        body = impair.NFGEN.pack(2, 0, 7) + other + hdr
        msg_type = impair.NFNL_SUBSYS_QUEUE << 8 | impair.NFQNL_MSG_PACKET
        one = impair.NLMSG.pack(16 + len(body), msg_type, 0, 0, 0) + body
        msgs = list(impair.iter_messages(one + one))
        self.assertEqual(len(msgs), 2)
        self.assertEqual(msgs[0][0], msg_type)
        self.assertEqual(impair.packet_id(msgs[0][2]), 0xDEADBEEF)
        self.assertIsNone(impair.packet_id(impair.NFGEN.pack(2, 0, 7) + other))

    def test_cut_watcher(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "cut")
            cut = impair.CutWatcher(path, period=0.0)
            self.assertFalse(cut.active(0.0))
            open(path, "w").close()
            self.assertTrue(cut.active(1.0))
            os.unlink(path)
            self.assertFalse(cut.active(2.0))
            self.assertFalse(impair.CutWatcher(None).active(0.0))


def have_live_prerequisites():
    return (hasattr(os, "geteuid") and os.geteuid() == 0
            and all(shutil.which(t) for t in ("ip", "iptables", "ping")))


@unittest.skipUnless(have_live_prerequisites(), "needs root, ip, iptables and ping")
class LiveImpairTest(unittest.TestCase):
    """ns a --veth--> ns b; the impairer delays/drops a->b packets on b's raw PREROUTING."""

    QUEUE = 7

    @classmethod
    def run_cmd(cls, *args, timeout=20, check=True):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} -> {proc.returncode}: {proc.stderr.strip()}")
        return proc

    @classmethod
    def setUpClass(cls):
        pid = os.getpid()
        cls.ns_a, cls.ns_b = f"mmimp{pid}a", f"mmimp{pid}b"
        cls.if_a, cls.if_b = f"mmi{pid}a", f"mmi{pid}b"
        net = f"10.250.{pid % 250}"
        cls.addr_b = f"{net}.2"
        cls.tmp = tempfile.mkdtemp(prefix="impair-test-")
        cls.cut_file = os.path.join(cls.tmp, "cut")
        cls.stats_file = os.path.join(cls.tmp, "stats.json")
        cls.impairer = None
        cls.addClassCleanup(cls.cleanup)
        try:
            cls.run_cmd("ip", "netns", "add", cls.ns_a)
            cls.run_cmd("ip", "netns", "add", cls.ns_b)
        except RuntimeError as e:
            raise unittest.SkipTest(f"cannot create network namespaces: {e}")
        for ns in (cls.ns_a, cls.ns_b):
            cls.run_cmd("ip", "-n", ns, "link", "set", "lo", "up")
        cls.run_cmd("ip", "link", "add", cls.if_a, "netns", cls.ns_a, "type", "veth",
                    "peer", "name", cls.if_b, "netns", cls.ns_b)
        cls.run_cmd("ip", "-n", cls.ns_a, "addr", "add", f"{net}.1/24", "dev", cls.if_a)
        cls.run_cmd("ip", "-n", cls.ns_b, "addr", "add", f"{cls.addr_b}/24", "dev", cls.if_b)
        cls.run_cmd("ip", "-n", cls.ns_a, "link", "set", cls.if_a, "up")
        cls.run_cmd("ip", "-n", cls.ns_b, "link", "set", cls.if_b, "up")
        # Impairer first, then the rule (no --queue-bypass: a dead impairer must show).
        cls.stderr = open(os.path.join(cls.tmp, "impair.log"), "w+")
        cls.impairer = subprocess.Popen(
            ["ip", "netns", "exec", cls.ns_b, sys.executable, os.path.join(HERE, "impair.py"),
             "--queue", str(cls.QUEUE), "--delay", "50", "--loss", "10", "--seed", "1",
             "--cut-file", cls.cut_file, "--stats-file", cls.stats_file, "--max-seconds", "300"],
            stdout=subprocess.DEVNULL, stderr=cls.stderr)
        deadline = time.monotonic() + 10
        while not os.path.exists(cls.stats_file):
            if cls.impairer.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"impairer did not start: {cls.log()}")
            time.sleep(0.05)
        try:
            cls.run_cmd("ip", "netns", "exec", cls.ns_b, "iptables", "-t", "raw", "-A", "PREROUTING",
                        "-i", cls.if_b, "-j", "NFQUEUE", "--queue-num", str(cls.QUEUE))
        except RuntimeError as e:
            raise unittest.SkipTest(f"no iptables NFQUEUE target: {e}")

    @classmethod
    def log(cls):
        cls.stderr.flush()
        cls.stderr.seek(0)
        return cls.stderr.read().strip()

    @classmethod
    def cleanup(cls):
        if cls.impairer is not None and cls.impairer.poll() is None:
            cls.impairer.terminate()
            try:
                cls.impairer.wait(timeout=5)
            except subprocess.TimeoutExpired:
                cls.impairer.kill()
                cls.impairer.wait(timeout=5)
        for ns in (cls.ns_a, cls.ns_b):     # deleting a namespace removes its veth end and rules
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        if getattr(cls, "stderr", None):
            cls.stderr.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ping(self, count, wait=2):
        """(sent, received, per-reply RTTs in ms) for count pings a->b, 10 ms apart."""
        self.assertIsNone(self.impairer.poll(), f"impairer died: {self.log()}")
        out = self.run_cmd("ip", "netns", "exec", self.ns_a, "ping", "-n", "-c", str(count), "-i", "0.01",
                           "-W", str(wait), self.addr_b, timeout=count * 0.05 + wait + 30, check=False).stdout
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        self.assertIsNotNone(m, out)
        return int(m.group(1)), int(m.group(2)), [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]

    def stats(self):
        with open(self.stats_file) as f:
            return json.load(f)

    def test_1_delay_and_loss(self):
        sent, received, rtts = self.ping(200)
        loss = 1 - received / sent
        print(f"\n  200 pings: median RTT {statistics.median(rtts):.1f} ms, loss {loss:.1%}", file=sys.stderr)
        self.assertEqual(sent, 200)
        self.assertGreaterEqual(statistics.median(rtts), 50.0)
        self.assertLess(statistics.median(rtts), 80.0)    # the impairer keeps up
        self.assertTrue(0.04 <= loss <= 0.18, f"loss {loss:.1%}")

    def test_2_cut_file(self):
        open(self.cut_file, "w").close()
        try:
            time.sleep(0.1)                                # > the impairer's 5 ms re-check
            before = self.stats()["dropped"]
            sent, received, _ = self.ping(50, wait=1)
            self.assertEqual((sent, received), (50, 0), "traffic passed during the cut")
        finally:
            os.unlink(self.cut_file)
        time.sleep(0.1)
        sent, received, rtts = self.ping(100)
        self.assertGreaterEqual(received, 70, "no recovery after the cut file was removed")
        self.assertGreaterEqual(min(rtts), 50.0)
        time.sleep(1.2)                                    # stats are rewritten every second
        self.assertGreaterEqual(self.stats()["dropped"] - before, 50)


if __name__ == "__main__":
    unittest.main()
