"""Print a table of what every tox env ran (runs, passed, skipped, failed, seconds of tests), from
the junit files its pytest runs wrote, and fail if an env in tox's env_list ran no test or failed one.
Last line: 'N passed, N failed, N skipped' for the whole matrix."""
import configparser
import glob
import os
import sys
import xml.etree.ElementTree as ET

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
config = configparser.ConfigParser(interpolation=None)
config.read(os.path.join(root, "tox.ini"))
envs = config["tox"]["env_list"].split()

totals = dict(passed=0, failed=0, skipped=0, seconds=0.0)
problems = []
reasons = {}
row = "{:<32} {:>5} {:>6} {:>7} {:>6} {:>8}"
print(row.format("env", "runs", "passed", "skipped", "failed", "seconds"))
for env in envs:
    files = sorted(glob.glob(os.path.join(root, ".tox", "junit", env, "*.xml")))
    if not files:
        problems.append("{}: no test results".format(env))
    counts = dict(passed=0, failed=0, skipped=0, seconds=0.0)
    for path in files:
        suite = ET.parse(path).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        tests, skipped = int(suite.get("tests")), int(suite.get("skipped"))
        failed = int(suite.get("failures")) + int(suite.get("errors"))
        passed = tests - skipped - failed
        for key, value in (("passed", passed), ("failed", failed), ("skipped", skipped),
                           ("seconds", float(suite.get("time")))):
            counts[key] += value
        if passed == 0:
            problems.append("{} {}: no test passed".format(
                env, os.path.splitext(os.path.basename(path))[0]))
        for case in suite.iter("testcase"):
            for skip in case.findall("skipped"):
                reasons.setdefault(env, set()).add(skip.get("message", "").split("\n")[0])
    for key in totals:
        totals[key] += counts[key]
    print(row.format(env, len(files), counts["passed"], counts["skipped"], counts["failed"],
                     "{:.0f}".format(counts["seconds"])))
print(row.format("total ({} envs)".format(len(envs)), "", totals["passed"], totals["skipped"],
                 totals["failed"], "{:.0f}".format(totals["seconds"])))
print("(seconds: the envs' pytest runs, from their junit files; set-up not included)")
for env in envs:
    for reason in sorted(reasons.get(env, ())):
        print("skipped on {}: {}".format(env, reason))
for problem in problems:
    print("ERROR: " + problem)
print("{passed} passed, {failed} failed, {skipped} skipped".format(**totals))
sys.exit(1 if problems or totals["failed"] else 0)
