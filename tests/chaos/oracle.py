#!/usr/bin/env python3
"""The chaos harness's oracles: safety checked from outside the nodes.

Inputs, all in the run's work dir (chaos.py writes them; a kept log dir can be re-checked with
`tests/chaos/oracle.py DIR`):
  stamps           one line per hook fact, appended (O_APPEND) by the hook scripts of every host:
                   KIND HOST DEPLOYMENT EVENT UPTIME PID, KIND one of
                     begin / end    a hook script started / is about to exit
                     enter          the host is out of service (first line of ApplicationStop and
                                    BeforeInstall: the first hooks of a lifecycle)
                     ok             ValidateService is about to exit 0 (the marker)
                     leave          the host is back in service (right after `ok`)
                     double         the script found its host's lock held by another hook
                   The file's line order is the order of the writes (appends are atomic), so
                   the checks use it, not the 10 ms clock.
  final/hN.json    `status ID -o json` of every deployment as node hN reports it after the
                   faults healed: {"ID": document or null, ...}
  deployments.json the ids the harness knows of (submitted or listed by any node)

Checks (each failure is a violation with a one-line reason):
  overlap      when a host enters deployment D, the hosts out of service among D's targets
               number at most K(D) (out of service: from an `enter` until the host's next
               `leave`; a host that failed stays out, as in docs/rollout.md)
  double       no `double` line: never two hook scripts of one host at once
  rerun        no hook event started twice for one deployment and host (a hook is never rerun,
               a host never enters a deployment twice)
  validate     every host row Succeeded (and so every Succeeded deployment) has an `ok` marker
               of that deployment and host
  terminal     every deployment is Succeeded, Failed or Stopped at every node
  agreement    every node reports the same status for every deployment, and the same status
               for each host row
"""
import json
import os
import sys

TERMINAL = {"Succeeded", "Failed", "Stopped"}


def max_out_of_service(config, targets, percent):
    """K of a deployment, as node/deploy/deployment_config.cc computes it: the harness's own
    config `chaos` is a fleet percentage `percent`; the built-ins by their rule."""
    n = max(targets, 0)
    if n == 0 or config in ("OneAtATime", "CodeDeployDefault.OneAtATime"):
        return 1
    if config in ("AllAtOnce", "CodeDeployDefault.AllAtOnce"):
        healthy = 0
    elif config in ("HalfAtATime", "CodeDeployDefault.HalfAtATime"):
        healthy = (n * 50 + 99) // 100
    else:
        healthy = (n * percent + 99) // 100
    return min(max(n - min(healthy, n), 1), n)


def read_stamps(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5:
                out.append(
                    {"kind": parts[0], "host": parts[1], "dep": parts[2], "event": parts[3], "t": parts[4],
                     "pid": parts[5] if len(parts) > 5 else ""}
                )
    return out


def host_of_root(name):
    """Install roots are WORK/rN; the nodes are named hN."""
    return "h" + name[1:] if name.startswith("r") else name


def check(work, percent=60):
    """Returns (violations, facts): lists of strings and a dict of numbers for the verdict."""
    violations = []
    stamps = read_stamps(os.path.join(work, "stamps"))
    finals = {}
    final_dir = os.path.join(work, "final")
    if os.path.isdir(final_dir):
        for name in sorted(os.listdir(final_dir)):
            if name.endswith(".json"):
                with open(os.path.join(final_dir, name)) as f:
                    finals[name[:-5]] = json.load(f)
    ids = set()
    dep_file = os.path.join(work, "deployments.json")
    if os.path.exists(dep_file):
        with open(dep_file) as f:
            ids.update(json.load(f))
    for docs in finals.values():
        ids.update(docs)

    # One reference document per deployment: the first node's that has one.
    ref = {}
    for node in sorted(finals):
        for dep, doc in finals[node].items():
            if isinstance(doc, dict) and dep not in ref:
                ref[dep] = doc

    # terminal + agreement
    for dep in sorted(ids):
        seen = {}
        rows = {}
        for node in sorted(finals):
            doc = finals[node].get(dep)
            st = doc.get("status") if isinstance(doc, dict) else None
            seen[node] = st
            if st not in TERMINAL:
                violations.append(f"terminal: {dep} is {st or 'unknown'} at {node}")
            if isinstance(doc, dict):
                rows[node] = {h.get("host"): h.get("status") for h in doc.get("hosts", [])}
        if len(set(seen.values())) > 1:
            violations.append(f"agreement: {dep} statuses differ: {seen}")
        row_views = {json.dumps(r, sort_keys=True) for r in rows.values()}
        if len(row_views) > 1:
            violations.append(f"agreement: {dep} host rows differ: {rows}")

    # validate marker
    oks = {(s["dep"], host_of_root(s["host"])) for s in stamps if s["kind"] == "ok"}
    for dep, doc in sorted(ref.items()):
        for node in sorted(finals):
            d = finals[node].get(dep)
            if not isinstance(d, dict):
                continue
            for h in d.get("hosts", []):
                if h.get("status") == "Succeeded" and (dep, h.get("host")) not in oks:
                    violations.append(
                        f"validate: {dep} host {h.get('host')} Succeeded at {node} without a "
                        "recorded exit 0 of ValidateService")

    # double
    for s in stamps:
        if s["kind"] == "double":
            violations.append(f"double: {s['host']} ran {s['event']} of {s['dep']} (pid {s['pid']}, "
                              f"uptime {s['t']}) while another of its hooks held the lock")

    # rerun: docs/rollout.md, "a hook is never rerun" and no host enters a deployment twice
    runs = {}
    for s in stamps:
        if s["kind"] == "begin":
            key = (s["dep"], s["host"], s["event"])
            runs[key] = runs.get(key, 0) + 1
    for (dep, host, event), count in sorted(runs.items()):
        if count > 1:
            violations.append(f"rerun: {host_of_root(host)} ran {event} of {dep} {count} times")

    # overlap, in the stamps' write order
    inside = set()
    worst = {}  # dep -> (max inside among targets, K)
    global_max = 0
    for s in stamps:
        host = host_of_root(s["host"])
        if s["kind"] == "enter":
            inside.add(host)
            global_max = max(global_max, len(inside))
            doc = ref.get(s["dep"])
            if doc is None:
                violations.append(f"overlap: {host} entered {s['dep']}, which no node knows")
                continue
            targets = {h.get("host") for h in doc.get("hosts", [])}
            k = max_out_of_service(doc.get("deploymentConfig", ""), len(targets), percent)
            out = sorted(inside & targets)
            prev = worst.get(s["dep"], (0, k))[0]
            worst[s["dep"]] = (max(prev, len(out)), k)
            if host not in targets:
                violations.append(f"overlap: {host} entered {s['dep']} but is not one of its targets")
            if len(out) > k:
                violations.append(f"overlap: {len(out)} > K={k} targets of {s['dep']} out of service "
                                  f"when {host} entered at uptime {s['t']}: {out}")
        elif s["kind"] == "leave":
            inside.discard(host)

    statuses = {}
    for doc in ref.values():
        statuses[doc.get("status")] = statuses.get(doc.get("status"), 0) + 1
    facts = {
        "deployments": len(ids),
        "statuses": statuses,
        "max_overlap": max((w[0] for w in worst.values()), default=0),
        "max_k": max((w[1] for w in worst.values()), default=0),
        "global_max_out": global_max,
        "hooks": sum(1 for s in stamps if s["kind"] == "begin"),
        "validate_ok": len(oks),
    }
    return violations, facts


def main():
    if len(sys.argv) < 2:
        print("usage: oracle.py WORK_DIR [PERCENT]", file=sys.stderr)
        return 2
    violations, facts = check(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 60)
    for v in violations:
        print(v)
    print(("FAIL " if violations else "PASS ") + json.dumps(facts, sort_keys=True))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
