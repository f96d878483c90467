#!/usr/bin/env python3
"""Chaos harness: real meshdeploy nodes in network namespaces, a stream of deployments, a seeded
nemesis, and oracles from outside the nodes (tests/chaos/oracle.py). docs/reliability.md,
"Chaos harness", says what it checks and how to read a failure.

  tests/chaos/chaos.py --build BUILD_DIR [--variant short|long|soak] [--seed N] [--duration S]
                       [--keep] [--hosts 7]                                     (as root)

It builds HOSTS hosts as network namespaces, each with a veth to a bridge that lives in a
namespace of its own (nothing is added to the caller's network namespace), starts a node in
each, creates one deployment group over all of them (config `chaos`: 60% minimum healthy, so
K = 2 of 7), submits a deployment every INTERVAL seconds through a random node while the
nemesis applies its schedule, heals everything, waits (at most 180 s) until every deployment is
terminal at every node with every node agreeing, and runs the oracles. It prints one verdict
line (`chaos: PASS ...` or `chaos: FAIL ...`, exit 0 or 1; 77 = skipped: not root or no `ip`).

The schedule comes from random.Random(seed) alone and is written to WORK/schedule.json before
the first fault; the same --seed, --variant and --duration give the same schedule (the
timings of the nodes differ from run to run, so a replay is a re-run of the same faults, not a
recording). A failing run keeps WORK (seed, schedule, run.log, every node's log, the stamps,
the final statuses) and prints its path; --keep keeps it always.

Every loop is bounded in time and count; Ctrl-C, SIGTERM, errors and the end stop every process
the run started (the nodes, the CPU hog, whatever still runs in its namespaces: hook scripts a
killed node left behind) and delete its namespaces.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402

SKIP = 77
GOSSIP_PORT = 7946
API = "127.0.0.1:7947"
PERCENT = 60  # the `chaos` config's minimum healthy hosts, in percent of the targets

# Per variant: chaos phase (s), seconds between deployments, fault kinds, fault durations
# (min, max s), freeze max (s), pause between fault starts (min, max s), concurrent faults.
VARIANTS = {
    "short": dict(duration=100, interval=12, dur=(3, 25), freeze=25, gap=(2, 8), concurrent=2,
                  kinds=["isolate", "isolate-submitter", "split", "oneway", "crash", "crash-wipe",
                         "crash-midhook", "restart", "freeze", "throttle", "hog"],
                  sample=10),
    "long": dict(duration=600, interval=20, dur=(5, 90), freeze=90, gap=(3, 20), concurrent=2,
                 kinds=["isolate", "isolate-submitter", "split", "oneway", "crash", "crash-wipe",
                        "crash-midhook", "restart", "freeze", "throttle", "hog"],
                 sample=30),
    # Light faults, a deployment a minute; resources sampled every minute.
    "soak": dict(duration=7200, interval=60, dur=(5, 30), freeze=30, gap=(60, 180), concurrent=1,
                 kinds=["isolate", "isolate-submitter", "split", "oneway", "freeze", "throttle",
                        "restart", "crash-midhook"],
                 sample=60),
}

HOOK = r"""#!/bin/sh
# Chaos revision hook (every lifecycle event): stamps for the outside oracles.
stamps=@STAMPS@
host=$(basename "$MESHDEPLOY_INSTALL_ROOT")
stamp() {
  read -r up _ </proc/uptime
  echo "$1 $host ${DEPLOYMENT_ID:-none} ${LIFECYCLE_EVENT:-none} $up $$" >>"$stamps"
}
exec 9>>"@LOCKS@/$host.lock"
if ! flock -n 9; then stamp double; fi
stamp begin
case "$LIFECYCLE_EVENT" in ApplicationStop|BeforeInstall) stamp enter ;; esac
# Deterministic per (deployment, host, event): how long to take, whether to fail.
h=$(printf '%s %s %s' "$DEPLOYMENT_ID" "$host" "$LIFECYCLE_EVENT" | cksum | cut -d' ' -f1)
ms=$((100 + h % 500))
if [ "$LIFECYCLE_EVENT" = BeforeInstall ] && [ $((h % 100)) -lt 20 ]; then ms=$((1500 + h % 2500)); fi
sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
if [ "$LIFECYCLE_EVENT" = ValidateService ]; then
  if [ $((h / 7 % 100)) -lt 4 ]; then stamp end; echo "failing on purpose"; exit 3; fi
  stamp ok
  stamp leave
fi
stamp end
exit 0
"""

APPSPEC = """version: 0.0
os: linux
files:
  - source: content
    destination: /srv/chaos
file_exists_behavior: OVERWRITE
hooks:
"""


class Run:
    def __init__(self, args):
        self.args = args
        self.v = dict(VARIANTS[args.variant])
        if args.duration:
            self.v["duration"] = args.duration
        self.seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
        self.n = args.hosts
        self.bin = os.path.join(os.path.abspath(args.build), "meshdeploy")
        self.prefix = f"mdc{os.getpid() % 100000}"
        self.work = tempfile.mkdtemp(prefix=f"meshdeploy-chaos-{self.seed}-")
        self.namespaces = []
        self.nodes = {}  # i -> Popen (None while down)
        self.extra = []  # other processes started (CPU hogs)
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self.submitted = []  # deployment ids
        self.faults_applied = 0
        self.logf = open(os.path.join(self.work, "run.log"), "a", buffering=1)
        self.t0 = time.monotonic()

    # --- logging and commands -------------------------------------------------------------
    def log(self, msg):
        line = f"[{time.monotonic() - self.t0:8.2f}] {msg}"
        with self.lock:
            self.logf.write(line + "\n")
        if self.args.verbose:
            print(line, flush=True)

    def sh(self, *cmd, check=True, timeout=30, ns=None):
        full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
        r = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(full)}: exit {r.returncode}: {r.stderr.strip()}")
        return r

    def ns(self, i):
        return f"{self.prefix}-h{i}"

    def addr(self, i):
        return f"10.79.0.{i}"

    def cli(self, i, *args, timeout=30):
        env = dict(os.environ, MESHDEPLOY_API=API, MESHDEPLOY_IDENTITY=os.path.join(self.work, "c", "chaos.key"))
        try:
            r = subprocess.run(["ip", "netns", "exec", self.ns(i), self.bin] + list(args), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
            return r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired:
            return -1, "", f"timed out after {timeout} s"

    # --- topology --------------------------------------------------------------------------
    def add_ns(self, name):
        self.sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.sh("ip", "-n", name, "link", "set", "lo", "up")

    def build_topology(self):
        sw = f"{self.prefix}-sw"
        self.add_ns(sw)
        self.sw = sw
        for br in ("br0", "br1"):  # br1: the other side of a split
            self.sh("ip", "-n", sw, "link", "add", br, "type", "bridge")
            self.sh("ip", "-n", sw, "link", "set", br, "up")
        for i in range(1, self.n + 1):
            ns = self.ns(i)
            self.add_ns(ns)
            self.sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"p{i}", "netns", sw)
            self.sh("ip", "-n", sw, "link", "set", f"p{i}", "master", "br0")
            self.sh("ip", "-n", sw, "link", "set", f"p{i}", "up")
            self.sh("ip", "-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", "eth0")
            self.sh("ip", "-n", ns, "link", "set", "eth0", "up")

    # --- nodes -----------------------------------------------------------------------------
    def start_node(self, i):
        c = os.path.join(self.work, "c")
        data = os.path.join(self.work, f"d{i}")
        for f in ("api.addr", "gossip.addr"):
            try:
                os.unlink(os.path.join(data, f))
            except FileNotFoundError:
                pass
        cmd = ["ip", "netns", "exec", self.ns(i), self.bin, "node", "run", "--name", f"h{i}",
               "--data-dir", data, "--install-root", os.path.join(self.work, f"r{i}"),
               "--keyring", f"{c}/keyring.txt", "--admin-pub", f"{c}/admin.pub", "--grant", f"{c}/chaos.grant",
               "--bind", f"{self.addr(i)}:{GOSSIP_PORT}", "--api", API, "--gossip-profile", "lan",
               "--tag", "role=app", "--log-level", self.args.log_level]
        if self.args.no_catch_up:
            cmd.append("--no-catch-up")
        for j in range(1, self.n + 1):
            if j != i:
                cmd += ["--join", f"{self.addr(j)}:{GOSSIP_PORT}"]
        out = open(os.path.join(self.work, f"h{i}.log"), "a")
        out.write(f"=== start at {time.monotonic() - self.t0:.2f} s\n")
        out.flush()
        # `ip netns exec` execs the node: the pid is the node's. Own session: a terminal's
        # Ctrl-C reaches only the harness, which stops everything itself.
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        out.close()
        with self.lock:
            self.nodes[i] = p
        self.log(f"node h{i} started, pid {p.pid}")

    def wait_ready(self, i, limit=30):
        data = os.path.join(self.work, f"d{i}")
        for _ in range(limit * 10):
            if os.path.exists(os.path.join(data, "api.addr")):
                return True
            p = self.nodes.get(i)
            if p is None or p.poll() is not None:
                break
            time.sleep(0.1)
        return False

    def kill_node(self, i, sig=signal.SIGKILL):
        with self.lock:
            p = self.nodes.get(i)
            self.nodes[i] = None
        if p is None:
            return
        try:
            os.kill(p.pid, signal.SIGCONT)
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
        self.log(f"node h{i} pid {p.pid} ended ({signal.Signals(sig).name}), exit {p.returncode}")

    def wipe(self, i):
        """A wiped data dir, except the node's key: a new key could not use the old name (the
        first host binding wins, docs/records.md), so a reinstalled host keeps its key."""
        data = os.path.join(self.work, f"d{i}")
        for name in os.listdir(data):
            if name == "node.key":
                continue
            path = os.path.join(data, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        self.log(f"h{i}: data dir wiped (node.key kept)")

    def alive_count(self, i):
        rc, out, _ = self.cli(i, "members", "-o", "json", timeout=10)
        return out.count('"alive"') if rc == 0 else 0

    def wait_alive(self, i, limit):
        end = time.monotonic() + limit
        while time.monotonic() < end and not self.stop.is_set():
            if self.alive_count(i) >= self.n:
                return True
            time.sleep(0.5)
        return False

    # --- the revision ------------------------------------------------------------------------
    def make_template(self):
        t = os.path.join(self.work, "template")
        os.makedirs(os.path.join(t, "scripts"))
        os.makedirs(os.path.join(t, "content"))
        os.makedirs(os.path.join(self.work, "locks"))
        hook = HOOK.replace("@STAMPS@", os.path.join(self.work, "stamps")).replace(
            "@LOCKS@", os.path.join(self.work, "locks"))
        path = os.path.join(t, "scripts", "hook.sh")
        with open(path, "w") as f:
            f.write(hook)
        os.chmod(path, 0o755)
        spec = APPSPEC
        for ev in ("ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"):
            spec += f"  {ev}:\n    - location: scripts/hook.sh\n      timeout: 120\n"
        with open(os.path.join(t, "appspec.yml"), "w") as f:
            f.write(spec)
        self.template = t

    def revision(self, n):
        d = os.path.join(self.work, "rev", str(n))
        shutil.copytree(self.template, d)
        with open(os.path.join(d, "content", "version.txt"), "w") as f:
            f.write(f"revision {n} of run {self.seed}\n")
        return d

    def submit(self, n, i):
        rc, out, err = self.cli(i, "deploy", "--app", "chaos", "--group", "g", "--source", self.revision(n),
                                timeout=40)
        dep = out.split("\n", 1)[0].strip() if out else ""
        if re.fullmatch(r"d-[A-Za-z0-9]+", dep):
            with self.lock:
                self.submitted.append(dep)
            self.log(f"deployment {n} through h{i}: {dep} (exit {rc})")
            return dep
        self.log(f"deployment {n} through h{i}: not submitted (exit {rc}): {err.strip()[:300]}")
        return None

    # --- the nemesis -----------------------------------------------------------------------
    def schedule(self):
        """The whole fault schedule, from the seed alone."""
        rng = random.Random(self.seed)
        v = self.v
        hosts = list(range(1, self.n + 1))
        out = []
        t = rng.uniform(*v["gap"])
        busy = {}  # host -> busy until
        active_ends = []
        while t < v["duration"] - 2 and len(out) < 1000:
            active_ends = [e for e in active_ends if e > t]
            if len(active_ends) >= v["concurrent"]:
                t = min(active_ends) + 0.5
                continue
            kind = rng.choice(v["kinds"])
            dur = round(rng.uniform(*v["dur"]), 1)
            if kind == "freeze":
                dur = round(rng.uniform(1, v["freeze"]), 1)
            elif kind == "hog":  # the machine is shared: short, and one at a time
                dur = min(dur, 20.0)
                if any(x["kind"] == "hog" and x["at"] + x["duration"] > t for x in out):
                    kind = "throttle"
            dur = round(min(dur, max(1.0, v["duration"] - t)), 1)
            free = [h for h in hosts if busy.get(h, 0) <= t]
            f = {"at": round(t, 1), "kind": kind, "duration": dur}
            if kind == "crash-midhook":
                # The host is the first one found inside a hook when it fires; nothing else runs.
                if len(free) < self.n:
                    t += 1
                    continue
                f["wipe"] = rng.random() < 0.3
                for h in hosts:
                    busy[h] = t + dur + 30
                active_ends.append(t + dur + 30)
            else:
                if not free:
                    t += 1
                    continue
                h = rng.choice(free)
                f["host"] = h
                busy[h] = t + dur
                if kind == "split":
                    others = [x for x in free if x != h]
                    rng.shuffle(others)
                    f["side"] = sorted([h] + others[: rng.randint(0, min(2, len(others)))])
                    for x in f["side"]:
                        busy[x] = t + dur
                elif kind == "oneway":
                    f["to"] = sorted(rng.sample([x for x in hosts if x != h], rng.randint(1, 3)))
                elif kind == "throttle":
                    f["kbit"] = rng.choice([128, 256, 1024])
                active_ends.append(t + dur)
            out.append(f)
            t += rng.uniform(*v["gap"])
        return out

    def hook_running(self, i):
        """Whether a hook of host i holds its lock now."""
        path = os.path.join(self.work, "locks", f"r{i}.lock")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        # Read /proc/locks rather than try the lock: a probe holding it for an instant would
        # make a hook starting then see its host's lock taken (a false `double`).
        want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks") as f:
            return any(line.split()[5] == want for line in f if len(line.split()) > 5 and "FLOCK" in line)

    def apply(self, f):
        """Applies fault f; returns the function that heals it (or None when skipped)."""
        kind = f["kind"]
        h = f.get("host")
        if kind == "isolate" or kind == "isolate-submitter":
            if kind == "isolate-submitter":
                with self.lock:
                    self.counter += 1
                    n = self.counter
                self.submit(n, h)
            self.sh("ip", "-n", self.sw, "link", "set", f"p{h}", "down")
            return lambda: self.sh("ip", "-n", self.sw, "link", "set", f"p{h}", "up")
        if kind == "split":
            for x in f["side"]:
                self.sh("ip", "-n", self.sw, "link", "set", f"p{x}", "master", "br1")

            def heal():
                for x in f["side"]:
                    self.sh("ip", "-n", self.sw, "link", "set", f"p{x}", "master", "br0")
            return heal
        if kind == "oneway":
            for j in f["to"]:
                self.sh("ip", "-n", self.ns(h), "route", "add", "blackhole", f"{self.addr(j)}/32")

            def heal():
                for j in f["to"]:
                    self.sh("ip", "-n", self.ns(h), "route", "del", "blackhole", f"{self.addr(j)}/32", check=False)
            return heal
        if kind == "throttle":
            self.sh("tc", "-n", self.ns(h), "qdisc", "add", "dev", "eth0", "root", "tbf", "rate",
                    f"{f['kbit']}kbit", "burst", "16kb", "latency", "400ms")
            return lambda: self.sh("tc", "-n", self.ns(h), "qdisc", "del", "dev", "eth0", "root", check=False)
        if kind == "freeze":
            p = self.nodes.get(h)
            if p is None:
                return None
            os.kill(p.pid, signal.SIGSTOP)

            def heal():
                try:
                    os.kill(p.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            return heal
        if kind == "hog":
            p = subprocess.Popen(["ip", "netns", "exec", self.ns(h), "sh", "-c", "while :; do :; done"],
                                 start_new_session=True)
            with self.lock:
                self.extra.append(p)

            def heal():
                p.kill()
                p.wait(timeout=5)
            return heal
        if kind in ("crash", "crash-wipe", "restart", "crash-midhook"):
            if kind == "crash-midhook":
                h = None
                end = time.monotonic() + 30
                while h is None and time.monotonic() < end and not self.stop.is_set():
                    running = [i for i in range(1, self.n + 1) if self.nodes.get(i) and self.hook_running(i)]
                    h = running[0] if running else None
                    if h is None:
                        time.sleep(0.05)
                if h is None:
                    self.log("crash-midhook: no hook ran within 30 s; skipped")
                    return None
                self.log(f"crash-midhook: h{h} is inside a hook")
            self.kill_node(h, signal.SIGTERM if kind == "restart" else signal.SIGKILL)
            if kind == "crash-wipe" or (kind == "crash-midhook" and f.get("wipe")):
                self.wipe(h)

            def heal():
                self.start_node(h)
                if not self.wait_ready(h, 30):
                    self.log(f"h{h} did not come back within 30 s")
            return heal
        raise ValueError(kind)

    def nemesis(self, plan):
        t_start = time.monotonic()
        pending = list(plan)
        active = []  # (end time, fault, heal)
        for _ in range(100000):
            if self.stop.is_set():
                break
            now = time.monotonic() - t_start
            for a in [a for a in active if a[0] <= now]:
                active.remove(a)
                self.log(f"heal {a[1]['kind']} {json.dumps(a[1], sort_keys=True)}")
                try:
                    a[2]()
                except Exception as e:  # noqa: BLE001 - a failed heal is logged; the end heals again
                    self.log(f"heal failed: {e}")
            if pending and pending[0]["at"] <= now:
                f = pending.pop(0)
                busy = {a[1].get("host") for a in active} | {x for a in active for x in a[1].get("side", [])}
                if f.get("host") in busy or any(x in busy for x in f.get("side", [])):
                    self.log(f"skip (host busy) {json.dumps(f, sort_keys=True)}")
                    continue
                self.log(f"apply {json.dumps(f, sort_keys=True)}")
                try:
                    heal = self.apply(f)
                except Exception as e:  # noqa: BLE001
                    self.log(f"apply failed: {e}")
                    heal = None
                if heal:
                    self.faults_applied += 1
                    active.append((time.monotonic() - t_start + f["duration"], f, heal))
                continue
            if not pending and not active:
                break
            time.sleep(0.1)
        for a in active:
            self.log(f"heal at the end {a[1]['kind']}")
            try:
                a[2]()
            except Exception as e:  # noqa: BLE001
                self.log(f"heal failed: {e}")

    def stream(self):
        rng = random.Random(self.seed + 1)
        end = time.monotonic() + self.v["duration"]
        for _ in range(10000):
            if self.stop.is_set() or time.monotonic() >= end:
                break
            with self.lock:
                self.counter += 1
                n = self.counter
            self.submit(n, rng.randint(1, self.n))
            self.stop.wait(self.v["interval"] * rng.uniform(0.6, 1.4))

    def sampler(self):
        with open(os.path.join(self.work, "resources.csv"), "a", buffering=1) as out:
            out.write("seconds,host,pid,fds,rss_kb\n")
            for _ in range(100000):
                for i in range(1, self.n + 1):
                    p = self.nodes.get(i)
                    if p is None:
                        continue
                    try:
                        fds = len(os.listdir(f"/proc/{p.pid}/fd"))
                        with open(f"/proc/{p.pid}/status") as s:
                            rss = next(int(x.split()[1]) for x in s if x.startswith("VmRSS:"))
                        out.write(f"{time.monotonic() - self.t0:.0f},h{i},{p.pid},{fds},{rss}\n")
                    except (OSError, StopIteration):
                        pass
                if self.stop.wait(self.v["sample"]):
                    break

    # --- the end: agreement and termination --------------------------------------------------
    def read_all(self, i):
        """Node i's documents of the group: one `deployments` call (full documents), then
        `status` for any id the harness knows that the list lacks."""
        docs = {}
        rc, out, _ = self.cli(i, "deployments", "--app", "chaos", "-o", "json", timeout=30)
        if rc == 0:
            try:
                for d in json.loads(out).get("deployments", []):
                    if isinstance(d, dict) and d.get("deploymentId"):
                        docs[d["deploymentId"]] = d
            except ValueError:
                pass
        return docs

    @staticmethod
    def settled(d):
        return (isinstance(d, dict) and d.get("status") in oracle.TERMINAL
                and all(h.get("status") in ("Succeeded", "Failed", "Skipped", "Unknown") for h in d.get("hosts", [])))

    @staticmethod
    def view(d):
        if not isinstance(d, dict):
            return None
        return json.dumps([d.get("status"), {h.get("host"): h.get("status") for h in d.get("hosts", [])}],
                          sort_keys=True)

    def settle(self, limit=180):
        """Until every deployment is terminal at every node and all nodes agree, at most `limit`
        seconds. Writes final/hN.json and deployments.json."""
        end = time.monotonic() + limit
        docs = {}
        ids = set()
        quiet_ids = None
        for rnd in range(10000):
            docs = {i: self.read_all(i) for i in range(1, self.n + 1)}
            ids = set(self.submitted).union(*[set(d) for d in docs.values()])
            for i in docs:
                for dep in ids - set(docs[i]):
                    rc, out, _ = self.cli(i, "status", dep, "-o", "json", timeout=20)
                    try:
                        docs[i][dep] = json.loads(out) if rc in (0, 1) and out.strip() else None
                    except ValueError:
                        docs[i][dep] = None
            done = all(self.settled(docs[i].get(dep)) for i in docs for dep in ids) and all(
                len({self.view(docs[i].get(dep)) for i in docs}) == 1 for dep in ids)
            # Quiet means: all terminal and agreed, twice, 12 s apart (longer than a restarted
            # node's catch-up delay), with no new deployment in between.
            if done and ids == quiet_ids:
                self.log(f"settle: round {rnd}, {len(ids)} deployments, done")
                break
            if time.monotonic() >= end:
                self.log(f"settle: round {rnd}, {len(ids)} deployments, gave up")
                break
            quiet_ids = set(ids) if done else None
            time.sleep(12 if done else 3)
        os.makedirs(os.path.join(self.work, "final"), exist_ok=True)
        for i, d in docs.items():
            with open(os.path.join(self.work, "final", f"h{i}.json"), "w") as f:
                json.dump({dep: d.get(dep) for dep in sorted(ids)}, f, indent=1, sort_keys=True)
        with open(os.path.join(self.work, "deployments.json"), "w") as f:
            json.dump(sorted(ids | set(self.submitted)), f)

    # --- cleanup -----------------------------------------------------------------------------
    def cleanup(self):
        self.stop.set()
        for i in list(self.nodes):
            try:
                self.kill_node(i)
            except Exception as e:  # noqa: BLE001 - keep cleaning up
                self.log(f"cleanup h{i}: {e}")
        for p in self.extra:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)
        for ns in reversed(self.namespaces):
            # Whatever still runs in our namespaces is ours: hooks a killed node left behind.
            r = subprocess.run(["ip", "netns", "pids", ns], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGCONT)
                    os.kill(int(pid), signal.SIGKILL)
                    self.log(f"cleanup: killed pid {pid} left in {ns}")
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        self.namespaces = []

    # --- the run -----------------------------------------------------------------------------
    def run(self):
        a = self.args
        self.counter = 0
        self.log(f"seed {self.seed} variant {a.variant} duration {self.v['duration']} hosts {self.n} "
                 f"catch-up {'off' if a.no_catch_up else 'on'} binary {self.bin} machine {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
        plan = self.schedule()
        with open(os.path.join(self.work, "schedule.json"), "w") as f:
            json.dump({"seed": self.seed, "variant": a.variant, "duration": self.v["duration"],
                       "hosts": self.n, "no_catch_up": a.no_catch_up, "faults": plan}, f, indent=1)
        self.log(f"schedule: {len(plan)} faults (schedule.json)")
        self.build_topology()
        subprocess.run([self.bin, "cluster", "init", "--dir", os.path.join(self.work, "c"), "--operator", "chaos"],
                       check=True, stdout=subprocess.DEVNULL)
        self.make_template()
        for i in range(1, self.n + 1):
            self.start_node(i)
        for i in range(1, self.n + 1):
            if not self.wait_ready(i, 30):
                raise RuntimeError(f"node h{i} did not start within 30 s (see h{i}.log)")
        if not self.wait_alive(1, 60):
            raise RuntimeError("h1 does not see every node alive within 60 s")
        for args in (["app", "create", "chaos"], ["config", "create", "chaos", "--min-healthy", f"{PERCENT}%"],
                     ["group", "create", "--app", "chaos", "--name", "g", "--tag", "role=app", "--config", "chaos"]):
            rc, _, err = self.cli(1, *args)
            if rc != 0:
                raise RuntimeError(f"{' '.join(args)}: {err}")
        self.log("cluster ready; chaos starts")
        threads = [threading.Thread(target=self.nemesis, args=(plan,), daemon=True),
                   threading.Thread(target=self.stream, daemon=True),
                   threading.Thread(target=self.sampler, daemon=True)]
        for t in threads:
            t.start()
        # Bounded: the stream ends at `duration`; the nemesis heals by then (a fault that started
        # late is cut short); a midhook wait or a slow CLI call adds at most about a minute.
        threads[1].join(self.v["duration"] + 120)
        threads[0].join(max(60.0, self.v["dur"][1] + 60.0))
        self.log("chaos over; healing")
        # Everything healed: every node runs and is not stopped.
        for i in range(1, self.n + 1):
            p = self.nodes.get(i)
            if p is None or p.poll() is not None:
                self.log(f"h{i} is down at the end; starting it")
                self.start_node(i)
                self.wait_ready(i, 30)
            else:
                os.kill(p.pid, signal.SIGCONT)
        t_heal = time.monotonic()
        for i in range(1, self.n + 1):  # one budget of 60 s for all of them
            if not self.wait_alive(i, max(1.0, 60 - (time.monotonic() - t_heal))):
                self.log(f"h{i} does not see every node alive {time.monotonic() - t_heal:.0f} s after the heal")
        self.settle(limit=max(30.0, 180.0 - (time.monotonic() - t_heal)))
        self.stop.set()
        threads[2].join(5)
        violations, facts = oracle.check(self.work, PERCENT)
        with open(os.path.join(self.work, "verdict.txt"), "w") as f:
            f.write("\n".join(violations) + "\n" + json.dumps(facts, sort_keys=True) + "\n")
        return violations, facts


def resources_summary(work):
    """Per host: fds and RSS (MiB) at the first and last sample of its longest-lived pid, and the max."""
    path = os.path.join(work, "resources.csv")
    if not os.path.exists(path):
        return ""
    rows = {}
    with open(path) as f:
        next(f, None)
        for line in f:
            s, host, pid, fds, rss = line.strip().split(",")
            rows.setdefault((host, pid), []).append((int(s), int(fds), int(rss)))
    best = {}
    for (host, pid), r in rows.items():
        if host not in best or len(r) > len(best[host]):
            best[host] = r
    parts = []
    for host in sorted(best):
        r = best[host]
        parts.append(f"{host} fds {r[0][1]}->{r[-1][1]} (max {max(x[1] for x in r)}) "
                     f"rss {r[0][2] // 1024}->{r[-1][2] // 1024} MiB (max {max(x[2] for x in r) // 1024})")
    return "; ".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="build dir holding the meshdeploy binary")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="short")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--duration", type=int, help="chaos phase in seconds (default: the variant's)")
    ap.add_argument("--hosts", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the work dir even when the run passes")
    ap.add_argument("--log-level", default="info", help="the nodes' --log-level")
    ap.add_argument("--no-catch-up", action="store_true", help="start the nodes with --no-catch-up")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the run log as it goes")
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None:
        print("chaos: SKIP (needs root, ip and tc: network namespaces)")
        return SKIP
    if not 3 <= args.hosts <= 200:
        ap.error("--hosts must be 3..200")
    if not os.access(os.path.join(args.build, "meshdeploy"), os.X_OK):
        ap.error(f"no {args.build}/meshdeploy (build first)")
    run = Run(args)

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    violations, facts, error = [], {}, None
    try:
        violations, facts = run.run()
    except BaseException as e:  # noqa: BLE001 - report and clean up whatever happened
        error = f"{type(e).__name__}: {e}"
        run.log(f"error: {error}")
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        run.cleanup()
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)
    failed = bool(violations) or error is not None
    st = facts.get("statuses", {})
    line = (f"chaos: {'FAIL' if failed else 'PASS'} seed={run.seed} variant={args.variant} "
            f"duration={run.v['duration']}s hosts={run.n}{' no-catch-up' if args.no_catch_up else ''} faults={run.faults_applied} "
            f"deployments={facts.get('deployments', 0)} ("
            + ", ".join(f"{k} {v}" for k, v in sorted(st.items(), key=lambda x: str(x[0]))) + ") "
            f"max_overlap={facts.get('max_overlap', 0)}/K={facts.get('max_k', 0)} "
            f"global_max_out={facts.get('global_max_out', 0)} "
            f"hooks={facts.get('hooks', 0)} violations={len(violations)}"
            + (f" error={error!r}" if error else ""))
    res = resources_summary(run.work)
    if args.variant == "soak" and res:
        print("resources: " + res)
    for v in violations[:20]:
        print("  " + v)
    if len(violations) > 20:
        kinds = {}
        for v in violations:
            kinds[v.split(":", 1)[0]] = kinds.get(v.split(":", 1)[0], 0) + 1
        print(f"  ... {len(violations) - 20} more; by kind: {kinds}")
    if failed or args.keep:
        line += f" log={run.work}"
    else:
        shutil.rmtree(run.work, ignore_errors=True)
    print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
