#!/usr/bin/env python3
"""The measured errors of the CUDA tests as a Markdown table.

    python3 scripts/gpu_errors_table.py cuda_tests.json > errors.md

cuda_tests.json is rwkv_cuda_tests' --gtest_output=json. Each test that
compares GPU results with the CPU's (tests/cuda/cuda_test_util.h, expect_near)
records its worst comparison: the largest |gpu - cpu| over max|cpu|, and the
largest share of the allowed error any element used (1 = at the bound). The
table is what docs/testing.md lists per op once the tests have run on a GPU.
"""
import json
import sys


# gtest's own keys of a test, and the three of expect_near/expect_close.
STANDARD = {"name", "file", "line", "status", "result", "timestamp", "time", "classname", "failures",
            "value_param", "type_param", "worst_check", "worst_relative_error", "worst_tolerance_used"}


def rows(report):
    for suite in report.get("testsuites", []):
        for test in suite.get("testsuite", []):
            name = f"{suite.get('name', '?')}.{test.get('name', '?')}"
            failed = bool(test.get("failures"))
            skipped = test.get("result") == "SKIPPED" or test.get("status") == "NOTRUN"
            status = "FAILED" if failed else ("skipped" if skipped else "passed")
            # Other measurements a test recorded (a step's loss difference, gradient cosines).
            more = ", ".join(f"{k} {v}" for k, v in sorted(test.items()) if k not in STANDARD)
            yield (name, status, test.get("worst_check", ""), test.get("worst_relative_error", ""),
                   test.get("worst_tolerance_used", ""), more)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gpu_errors_table.py cuda_tests.json")
    try:
        with open(sys.argv[1], encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"gpu_errors_table: cannot read {sys.argv[1]}: {e}\n  ---> HINT: pass rwkv_cuda_tests' "
                 "--gtest_output=json file")
    print("| test | result | worst comparison | max error / max abs value | share of the tolerance used | more |")
    print("|---|---|---|---|---|---|")
    for name, status, check, relative, used, more in rows(report):
        print(f"| {name} | {status} | {check} | {relative} | {used} | {more} |")


if __name__ == "__main__":
    main()
