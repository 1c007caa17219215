"""What checking an invitation code costs: one scrypt hash (`data.invitations`), paid by
every `绑定 <工号> <邀请码>` and by every offline guess against a stolen hash.

    .venv/bin/python -m bench.invitation_codes [--rounds 200]

Printed: ms per check (mean, p50, p99 of the wall time) and what searching all 10^8 codes of
one member would cost on this machine, in CPU-days.
"""

from __future__ import annotations

import argparse
import statistics
import time

from data.invitations import CODE_DIGITS, code_matches, hash_code, new_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds
    stored = hash_code(new_code())
    timings: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        code_matches(new_code(), stored)
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    mean = statistics.fmean(timings)
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    search_days = mean / 1000 * 10**CODE_DIGITS / 86400
    print("| checks | mean ms | p50 ms | p99 ms | all codes of one member, CPU-days |")
    print("|---:|---:|---:|---:|---:|")
    print(
        f"| {rounds} | {mean:.1f} | {statistics.median(timings):.1f} | {p99:.1f} "
        f"| {search_days:.1f} |"
    )


if __name__ == "__main__":
    main()
