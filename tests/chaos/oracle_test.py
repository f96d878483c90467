#!/usr/bin/env python3
"""The chaos oracles catch what they are meant to: each check gets a clean input and one with a
planted violation (ctest chaos_oracle, label unit; no root needed)."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402

HOSTS = ["h1", "h2", "h3", "h4", "h5", "h6", "h7"]


def doc(dep, status="Succeeded", rows=None, config="chaos"):
    rows = rows or {h: "Succeeded" for h in HOSTS}
    return {"deploymentId": dep, "status": status, "deploymentConfig": config,
            "hosts": [{"host": h, "status": s} for h, s in rows.items()]}


def lifecycle(dep, host, ok=True):
    r = "r" + host[1:]
    lines = [f"begin {r} {dep} BeforeInstall 1.0 1", f"enter {r} {dep} BeforeInstall 1.0 1",
             f"end {r} {dep} BeforeInstall 1.1 1", f"begin {r} {dep} ValidateService 1.2 2"]
    if ok:
        lines += [f"ok {r} {dep} ValidateService 1.3 2", f"leave {r} {dep} ValidateService 1.3 2"]
    return lines + [f"end {r} {dep} ValidateService 1.3 2"]


class OracleTest(unittest.TestCase):
    def run_oracle(self, stamps, finals):
        with tempfile.TemporaryDirectory() as work:
            with open(os.path.join(work, "stamps"), "w") as f:
                f.write("\n".join(stamps) + "\n")
            os.makedirs(os.path.join(work, "final"))
            for node, docs in finals.items():
                with open(os.path.join(work, "final", node + ".json"), "w") as f:
                    json.dump(docs, f)
            return oracle.check(work, 60)

    def test_k_of_seven(self):
        self.assertEqual(oracle.max_out_of_service("chaos", 7, 60), 2)
        self.assertEqual(oracle.max_out_of_service("chaos", 5, 60), 2)
        self.assertEqual(oracle.max_out_of_service("chaos", 2, 60), 1)
        self.assertEqual(oracle.max_out_of_service("OneAtATime", 7, 60), 1)
        self.assertEqual(oracle.max_out_of_service("HalfAtATime", 7, 60), 3)

    def test_clean_run_passes(self):
        stamps = [line for h in HOSTS for line in lifecycle("d-1", h)]
        v, facts = self.run_oracle(stamps, {n: {"d-1": doc("d-1")} for n in HOSTS})
        self.assertEqual(v, [])
        self.assertEqual(facts["max_overlap"], 1)

    def test_three_inside_at_once_is_an_overlap(self):
        enters = [f"enter r{i} d-1 BeforeInstall 1.0 {i}" for i in (1, 2, 3)]
        stamps = enters + [line for h in HOSTS for line in lifecycle("d-1", h)]
        v, _ = self.run_oracle(stamps, {n: {"d-1": doc("d-1")} for n in HOSTS})
        self.assertTrue(any(x.startswith("overlap: 3 > K=2") for x in v), v)

    def test_a_failed_host_stays_out_of_service(self):
        # h1 and h2 fail d-1 (no leave); h3 entering d-2 makes three out of service.
        stamps = lifecycle("d-1", "h1", ok=False) + lifecycle("d-1", "h2", ok=False)
        stamps += lifecycle("d-2", "h3")
        finals = {n: {"d-1": doc("d-1", "Failed", {h: "Failed" for h in HOSTS}),
                      "d-2": doc("d-2", "Failed", {h: "Failed" for h in HOSTS})} for n in HOSTS}
        v, _ = self.run_oracle(stamps, finals)
        self.assertTrue(any("overlap: 3 > K=2 targets of d-2" in x for x in v), v)

    def test_succeeded_without_validate_exit_0(self):
        stamps = lifecycle("d-1", "h1", ok=False)
        finals = {n: {"d-1": doc("d-1", rows={"h1": "Succeeded"})} for n in HOSTS}
        v, _ = self.run_oracle(stamps, finals)
        self.assertTrue(any(x.startswith("validate: d-1 host h1") for x in v), v)

    def test_double_and_rerun(self):
        stamps = lifecycle("d-1", "h1") + ["double r1 d-1 ValidateService 1.2 3"]
        stamps += ["begin r1 d-1 ValidateService 1.4 4"]
        v, _ = self.run_oracle(stamps, {n: {"d-1": doc("d-1", rows={"h1": "Succeeded"})} for n in HOSTS})
        self.assertTrue(any(x.startswith("double: r1") for x in v), v)
        self.assertTrue(any(x.startswith("rerun: h1 ran ValidateService of d-1 2 times") for x in v), v)

    def test_disagreement_and_non_terminal(self):
        finals = {n: {"d-1": doc("d-1")} for n in HOSTS}
        finals["h3"] = {"d-1": doc("d-1", "Failed")}
        finals["h4"] = {"d-1": doc("d-1", "InProgress")}
        finals["h5"] = {"d-1": None}
        v, _ = self.run_oracle([], finals)
        self.assertTrue(any(x.startswith("agreement: d-1 statuses differ") for x in v), v)
        self.assertTrue(any(x == "terminal: d-1 is InProgress at h4" for x in v), v)
        self.assertTrue(any(x == "terminal: d-1 is unknown at h5" for x in v), v)

    def test_host_rows_must_agree(self):
        finals = {n: {"d-1": doc("d-1")} for n in HOSTS}
        rows = {h: "Succeeded" for h in HOSTS}
        rows["h7"] = "Failed"
        finals["h2"] = {"d-1": doc("d-1", rows=rows)}
        stamps = [line for h in HOSTS for line in lifecycle("d-1", h)]
        v, _ = self.run_oracle(stamps, finals)
        self.assertTrue(any(x.startswith("agreement: d-1 host rows differ") for x in v), v)


if __name__ == "__main__":
    unittest.main()
