#!/usr/bin/env python3
"""HTTP side of bench/gossip_real.sh: reads the nodes' API (GET /v1/members, GET /metrics) over
one keep-alive connection per node, and turns the measurements into numbers.

  gossip_real_probe.py alive N TIMEOUT_S API...          wait until every API lists N alive members
  gossip_real_probe.py steady WINDOW_S WORK_DIR PID... -- API...
        /metrics of every node, then the kernel's loopback and UDP/TCP counters and each PID's
        CPU, WINDOW_S seconds apart with no API traffic in between, then /metrics again
  gossip_real_probe.py detect PID NAME TIMEOUT_S PERIOD_S OUT.json API...
        kill -9 PID (the node NAME), then poll the survivors' /v1/members until each lists NAME
        as dead; per observer: the last poll that still showed it not dead and the first that
        showed it dead, in seconds after the kill
  gossip_real_probe.py report WORK_DIR N SIM_OUTPUT
        steady-state traffic and CPU, detection distributions and the comparison with the sim

Every wait is bounded by its TIMEOUT_S; every answer is checked before use (a node that does not
answer, or answers garbage, is reported, never trusted).
"""
import http.client
import json
import math
import os
import re
import resource
import signal
import sys
import time


class node_api:
    """One keep-alive HTTP connection to a node's API; reconnects once on failure."""

    def __init__(self, addr):
        host, _, port = addr.rpartition(":")
        self.addr, self.host, self.port = addr, host, int(port)
        self.conn = None

    def get(self, path, timeout=2.0):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise OSError(f"{self.addr}{path}: HTTP {r.status}")
                return body
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def members(self):
        doc = json.loads(self.get("/v1/members"))
        ms = doc.get("members") if isinstance(doc, dict) else None
        if not isinstance(ms, list):
            raise ValueError(f"{self.addr}: /v1/members has no members list")
        return {m.get("name"): m.get("status") for m in ms if isinstance(m, dict)}


def cmd_alive(n, timeout, addrs):
    nodes = [node_api(a) for a in addrs]
    t0 = time.monotonic()
    worst = None
    while time.monotonic() - t0 < timeout:
        worst = None
        for nd in nodes:
            try:
                alive = sum(1 for s in nd.members().values() if s == "alive")
            except (OSError, ValueError, http.client.HTTPException) as e:
                worst = (nd.addr, str(e))
                break
            if alive < n:
                worst = (nd.addr, f"{alive} alive")
                break
        if worst is None:
            print(f"{time.monotonic() - t0:.1f}")
            return 0
        time.sleep(0.2)
    print(f"not every node saw {n} alive within {timeout} s (e.g. {worst[0]}: {worst[1]})",
          file=sys.stderr)
    return 1


METRIC = re.compile(r"^(meshdeploy_[a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+)$")


def scrape(addrs):
    res = {}
    for a in addrs:
        text = node_api(a).get("/metrics").decode()
        vals = {}
        for line in text.splitlines():
            m = METRIC.match(line)
            if m:
                vals[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        if 'meshdeploy_gossip_wire_bytes_total{direction="out"}' not in vals:
            raise SystemExit(f"{a}: /metrics has no gossip wire byte counter")
        res[a] = {"t": time.time(), "metrics": vals}
    return res


def kernel_counters(pids):
    """Loopback device and UDP/TCP counters of this network namespace, machine CPU, and the
    CPU ticks and RSS of each pid."""
    c = {"lo_bytes": 0, "lo_packets": 0}
    for line in open("/proc/net/dev"):
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            f = rest.split()
            c["lo_bytes"], c["lo_packets"] = int(f[8]), int(f[9])  # transmitted
    snmp = {}
    lines = open("/proc/net/snmp").read().splitlines()
    for head, vals in zip(lines[::2], lines[1::2]):
        proto = head.split(":")[0]
        snmp[proto] = dict(zip(head.split()[1:], (int(x) for x in vals.split()[1:])))
    c["udp_out"] = snmp["Udp"]["OutDatagrams"]
    c["tcp_out"] = snmp["Tcp"]["OutSegs"]
    cpu = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    c["machine_total"], c["machine_idle"] = sum(cpu[:8]), cpu[3] + cpu[4]
    c["pids"] = {}
    for p in pids:
        f = open(f"/proc/{p}/stat").read().rpartition(")")[2].split()
        c["pids"][p] = {"ticks": int(f[11]) + int(f[12]), "rss_pages": int(f[21])}
    c["t"] = time.monotonic()
    c["load"] = open("/proc/loadavg").read().split()[0]
    return c


def cmd_steady(window, work, pids, addrs):
    json.dump(scrape(addrs), open(os.path.join(work, "metrics0.json"), "w"))
    k0 = kernel_counters(pids)
    time.sleep(window)  # no API traffic in here: the loopback counters are the cluster's own
    k1 = kernel_counters(pids)
    json.dump(scrape(addrs), open(os.path.join(work, "metrics1.json"), "w"))
    dt = k1["t"] - k0["t"]
    hz = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    doc = {
        "window": dt,
        "lo": {"bytes": k1["lo_bytes"] - k0["lo_bytes"],
               "packets": k1["lo_packets"] - k0["lo_packets"]},
        "udp_out": k1["udp_out"] - k0["udp_out"],
        "tcp_out": k1["tcp_out"] - k0["tcp_out"],
        "cpu_pct": [(k1["pids"][p]["ticks"] - k0["pids"][p]["ticks"]) / hz / dt * 100
                    for p in pids],
        "rss_mb": sum(k1["pids"][p]["rss_pages"] for p in pids) * page / len(pids) / 2**20,
        "machine_busy_pct": 100 * (1 - (k1["machine_idle"] - k0["machine_idle"]) /
                                   max(1, k1["machine_total"] - k0["machine_total"])),
        "load0": k0["load"], "load1": k1["load"],
        # Set by gossip_real.sh when it runs the cluster in a network namespace of its own.
        "netns": os.environ.get("MESHDEPLOY_BENCH_IN_NETNS") == "1",
    }
    json.dump(doc, open(os.path.join(work, "steady.json"), "w"))
    return 0


def cmd_detect(pid, name, timeout, period, out, addrs):
    nodes = [node_api(a) for a in addrs]
    for nd in nodes:  # open the connections before the kill
        st = nd.members().get(name)
        if st != "alive":
            raise SystemExit(f"{nd.addr} sees {name} as {st} before the kill")
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t_kill = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    before = {nd.addr: 0.0 for nd in nodes}  # last request start that still saw it not dead
    seen = {}  # addr -> (lo, hi)
    suspect = {}  # addr -> first poll answer showing it suspect or dead (upper bound)
    errors = 0
    polls = 0
    while len(seen) < len(nodes) and time.monotonic() - t_kill < timeout:
        round_start = time.monotonic()
        for nd in nodes:
            if nd.addr in seen:
                continue
            sent = time.monotonic() - t_kill
            try:
                st = nd.members().get(name)
            except (OSError, ValueError, http.client.HTTPException):
                errors += 1
                continue
            polls += 1
            if st in ("suspect", "dead") and nd.addr not in suspect:
                suspect[nd.addr] = time.monotonic() - t_kill
            if st == "dead":
                seen[nd.addr] = (before[nd.addr], time.monotonic() - t_kill)
            else:
                before[nd.addr] = sent
        time.sleep(max(0.0, period - (time.monotonic() - round_start)))
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = time.monotonic() - t_kill
    doc = {"victim": name, "observers": len(nodes), "seen": seen, "suspect": suspect,
           "missing": [nd.addr for nd in nodes if nd.addr not in seen], "poll_errors": errors,
           "polls": polls, "elapsed": elapsed,
           "poller_cpu_s": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)}
    json.dump(doc, open(out, "w"))
    if doc["missing"]:
        print(f"{len(doc['missing'])} of {len(nodes)} survivors did not see {name} dead within "
              f"{timeout} s", file=sys.stderr)
        return 1
    his = [hi for lo, hi in seen.values()]
    los = [lo for lo, hi in seen.values()]
    print(f"{name} seen dead by all {len(nodes)} survivors in {max(his):.2f} s (at least "
          f"{max(los):.2f} s); {polls} polls, poller CPU {doc['poller_cpu_s']:.2f} s")
    return 0


def pct(v, p):
    """Nearest-rank percentile, as the simulator's percentile()."""
    s = sorted(v)
    return s[max(0, min(len(s) - 1, math.ceil(p * len(s)) - 1))]


def dist(v):
    if not v:
        return "n/a"
    return (f"p50 {pct(v, 0.5):.2f} s, p90 {pct(v, 0.9):.2f} s, p99 {pct(v, 0.99):.2f} s, "
            f"max {max(v):.2f} s (n={len(v)})")


def cmd_report(work, n, sim_out):
    st = json.load(open(os.path.join(work, "steady.json")))
    m0 = json.load(open(os.path.join(work, "metrics0.json")))
    m1 = json.load(open(os.path.join(work, "metrics1.json")))
    window = st["window"]
    print(f"steady state, {window:.0f} s window, N={n}:")
    key_out = 'meshdeploy_gossip_wire_bytes_total{direction="out"}'
    key_rec = 'meshdeploy_records_sync_bytes_total{direction="out"}'
    key_pk = 'meshdeploy_gossip_packets_total{direction="out"}'
    rates, pk_rates = [], []
    for a, v1 in m1.items():
        v0 = m0[a]
        dt = v1["t"] - v0["t"]
        rates.append((v1["metrics"][key_out] - v0["metrics"][key_out]) / dt)
        pk_rates.append((v1["metrics"][key_pk] - v0["metrics"][key_pk]) / dt)
    rates.sort()
    print(f"  /metrics sealed bytes out (envelope + crypto, no IP/UDP/TCP headers) per node: "
          f"mean {sum(rates) / len(rates):.0f} B/s, min {rates[0]:.0f}, max {rates[-1]:.0f}; "
          f"UDP packets out mean {sum(pk_rates) / len(pk_rates):.2f}/s per node")
    rec = [(m1[a]["metrics"].get(key_rec, 0) - m0[a]["metrics"].get(key_rec, 0)) /
           (m1[a]["t"] - m0[a]["t"]) for a in m1]
    print(f"  of which records sync (records layer counter): mean {sum(rec) / len(rec):.0f} B/s")
    if st["netns"]:
        lo = st["lo"]
        per = lo["bytes"] / window / n
        print(f"  loopback device (the cluster's own network namespace, nothing else on it; lo "
              f"counts IP packets: IP/UDP/TCP headers and ACKs included): {per:.0f} B/s per node, "
              f"{lo['packets'] / window / n:.2f} packets/s per node (UDP "
              f"{st['udp_out'] / window / n:.2f} datagrams/s, TCP {st['tcp_out'] / window / n:.2f} "
              f"segments/s)")
        sealed = sum(m1[a]["metrics"][key_out] - m0[a]["metrics"][key_out] for a in m1)
        model = sealed + 28 * st["udp_out"] + 52 * st["tcp_out"]
        print(f"  check: /metrics sealed bytes + 28 B per UDP datagram + 52 B per TCP segment "
              f"(IPv4 + TCP timestamps) = {model} B vs {lo['bytes']} B counted by lo "
              f"({model / max(1, lo['bytes']):.3f}); the sealed bytes alone are "
              f"{sealed / max(1, lo['bytes']):.2f} of the wire bytes")
    cpu = sorted(st["cpu_pct"])
    print(f"  CPU per node (utime+stime / window): mean {sum(cpu) / len(cpu):.2f}% of a core, "
          f"p50 {pct(cpu, 0.5):.2f}%, max {cpu[-1]:.2f}%; RSS mean {st['rss_mb']:.1f} MB")
    print(f"  machine: {st['machine_busy_pct']:.0f}% of all cores busy during the window "
          f"(load {st['load0']} at start, {st['load1']} at end)")

    trials = []
    i = 1
    while os.path.exists(os.path.join(work, f"kill{i}.json")):
        trials.append(json.load(open(os.path.join(work, f"kill{i}.json"))))
        i += 1
    everyone, everyone_hi, obs, widths, cpu_poll, polls, elapsed = [], [], [], [], 0.0, 0, 0.0
    first_suspect, after_suspect = [], []
    for t in trials:
        if t["missing"]:
            continue
        mids = [(lo + hi) / 2 for lo, hi in t["seen"].values()]
        everyone.append(max(mids))
        everyone_hi.append(max(hi for lo, hi in t["seen"].values()))
        obs.extend(mids)
        widths.extend(hi - lo for lo, hi in t["seen"].values())
        if t.get("suspect"):
            first_suspect.append(min(t["suspect"].values()))
            after_suspect.append(everyone_hi[-1] - first_suspect[-1])
        cpu_poll += t["poller_cpu_s"]
        polls += t["polls"]
        elapsed += t["elapsed"]
    print(f"real processes, {len(trials)} kills ({len(trials) - len(everyone)} not seen by all):")
    print(f"  seen dead by every survivor: {dist(everyone)}")
    print(f"    (upper bounds, first poll that showed it: {dist(everyone_hi)})")
    print(f"  per observer: {dist(obs)}")
    if first_suspect:
        print(f"  first poll answer showing it suspect (or dead), any survivor: "
              f"{dist(first_suspect)}")
        print(f"  from there to dead everywhere (upper bounds): {dist(after_suspect)}")
    if widths:
        print(f"  poll resolution: mean window {sum(widths) / len(widths) * 1000:.0f} ms per "
              f"observer (midpoint used); poller {polls} requests, "
              f"{cpu_poll / max(elapsed, 1e-9) * 100:.0f}% of a core while polling")

    sim_all, sim_obs, sim_first = [], [], []
    for line in open(sim_out):
        m = re.search(r"first suspicion raised within ([0-9.]+) s", line)
        if m:
            sim_first.append(float(m.group(1)))
        m = re.match(r"\s*crash \d+: \S+ seen dead by all in ([0-9.]+) s", line)
        if m:
            sim_all.append(float(m.group(1)))
        m = re.match(r"\s*per observer: p50 ([0-9.]+) s, p90 ([0-9.]+) s, p99 ([0-9.]+) s", line)
        if m:
            sim_obs = [float(x) for x in m.groups()]
    print(f"simulator: seen dead by all: {dist(sim_all)}")
    if sim_first:
        print(f"  first suspicion raised (50 ms steps): {dist(sim_first)}")
    if sim_obs:
        print(f"  per observer: p50 {sim_obs[0]:.2f} s, p90 {sim_obs[1]:.2f} s, "
              f"p99 {sim_obs[2]:.2f} s")
    if everyone and sim_all:
        print("real / sim (agreement target: within 15%):")
        for label, p in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            r, s = pct(everyone, p), pct(sim_all, p)
            print(f"  seen by all {label}: {r:.2f} / {s:.2f} s = {r / s:.3f} "
                  f"({'within' if abs(r / s - 1) <= 0.15 else 'NOT within'} 15%)")
        if sim_obs and obs:
            for label, p, s in (("p50", 0.5, sim_obs[0]), ("p90", 0.9, sim_obs[1]),
                                ("p99", 0.99, sim_obs[2])):
                r = pct(obs, p)
                print(f"  per observer {label}: {r:.2f} / {s:.2f} s = {r / s:.3f} "
                      f"({'within' if abs(r / s - 1) <= 0.15 else 'NOT within'} 15%)")
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, a = argv[1], argv[2:]
    if cmd == "alive" and len(a) >= 3:
        return cmd_alive(int(a[0]), float(a[1]), a[2:])
    if cmd == "steady" and "--" in a and len(a) >= 4:
        sep = a.index("--")
        return cmd_steady(float(a[0]), a[1], [int(p) for p in a[2:sep]], a[sep + 1:])
    if cmd == "detect" and len(a) >= 6:
        return cmd_detect(int(a[0]), a[1], float(a[2]), float(a[3]), a[4], a[5:])
    if cmd == "report" and len(a) == 3:
        return cmd_report(a[0], int(a[1]), a[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:  # Ctrl-C: gossip_real.sh's trap stops the nodes
        sys.exit(130)
