"""Print what every tox env ran, from the junit files its pytest runs wrote, and fail if an env in
tox's env_list ran no test. Last line: 'N passed, N failed, N skipped' for the whole matrix."""
import configparser
import glob
import os
import sys
import xml.etree.ElementTree as ET

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
config = configparser.ConfigParser(interpolation=None)
config.read(os.path.join(root, "tox.ini"))
envs = config["tox"]["env_list"].split()

totals = dict(passed=0, failed=0, skipped=0)
problems = []
reasons = {}
print("{:<24} {:<14} {:>6} {:>6} {:>7}".format("env", "run", "passed", "failed", "skipped"))
for env in envs:
    files = sorted(glob.glob(os.path.join(root, ".tox", "junit", env, "*.xml")))
    if not files:
        problems.append("{}: no test results".format(env))
    for path in files:
        suite = ET.parse(path).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        tests, skipped = int(suite.get("tests")), int(suite.get("skipped"))
        failed = int(suite.get("failures")) + int(suite.get("errors"))
        passed = tests - skipped - failed
        totals["passed"] += passed
        totals["failed"] += failed
        totals["skipped"] += skipped
        run = os.path.splitext(os.path.basename(path))[0]
        print("{:<24} {:<14} {:>6} {:>6} {:>7}".format(env, run, passed, failed, skipped))
        if passed == 0:
            problems.append("{} {}: no test passed".format(env, run))
        for case in suite.iter("testcase"):
            for skip in case.findall("skipped"):
                reasons.setdefault(env, set()).add(skip.get("message", "").split("\n")[0])
for env in envs:
    for reason in sorted(reasons.get(env, ())):
        print("skipped on {}: {}".format(env, reason))
for problem in problems:
    print("ERROR: " + problem)
print("{passed} passed, {failed} failed, {skipped} skipped".format(**totals))
sys.exit(1 if problems or totals["failed"] else 0)
