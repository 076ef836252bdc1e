#!/usr/bin/env python3
"""Turns the ptxas -v output of a build into the register/spill table of
docs/cuda_kernels.md.

  cmake -S . -B build-ptxas -DRWKV_CUDA=ON -DRWKV_BUILD_TESTS=OFF -DRWKV_BUILD_BENCH=OFF \
        -DRWKV_CUDA_PTXAS_VERBOSE=ON
  CCACHE_DISABLE=1 cmake --build build-ptxas --target rwkv_kernels_cuda --clean-first 2>&1 | tee ptxas.log
  python3 kernels/cuda/ptxas_table.py ptxas.log
"""
import re
import subprocess
import sys


def main(path):
    rows, cur = [], None
    for line in open(path, encoding="utf-8", errors="replace"):
        m = re.search(r"Compiling entry function '(\S+)' for '(sm_\d+)'", line)
        if m:
            cur = {"name": m.group(1), "arch": m.group(2)}
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m and cur is not None:
            cur.update(stack=int(m.group(1)), spill_st=int(m.group(2)), spill_ld=int(m.group(3)))
            continue
        m = re.search(r"Used (\d+) registers(.*)", line)
        if m and cur is not None:
            smem = re.search(r"(\d+) bytes smem", m.group(2))
            cur.update(regs=int(m.group(1)), smem=int(smem.group(1)) if smem else 0)
            rows.append(cur)
            cur = None
    names = sorted({r["name"] for r in rows})
    demangled = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.split("\n")
    pretty = {}
    for raw, dem in zip(names, demangled):
        dem = dem.replace("rwkv::cuda::(anonymous namespace)::", "").replace("rwkv::", "")
        dem = re.sub(r"^void ", "", dem)
        pretty[raw] = re.sub(r"\(.*\)$", "", dem)
    table, order = {}, []
    for r in rows:
        key = pretty[r["name"]]
        if key not in table:
            table[key] = {}
            order.append(key)
        table[key][r["arch"]] = r
    print("| kernel | sm_80 regs | sm_80 spill st/ld (B) | sm_90 regs | sm_90 spill st/ld (B) | smem (B) | stack (B) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key in order:
        a, b = table[key].get("sm_80"), table[key].get("sm_90")
        cells = []
        for r in (a, b):
            cells += [str(r["regs"]), f"{r['spill_st']}/{r['spill_ld']}"] if r else ["-", "-"]
        smem = max(r["smem"] for r in (a, b) if r)
        stack = max(r["stack"] for r in (a, b) if r)
        print(f"| `{key}` | {' | '.join(cells)} | {smem} | {stack} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/dev/stdin")
