#!/usr/bin/env bash
# Runs integration tests with every ferry-worker under valgrind's memcheck (ferrytest.py's
# FERRY_WRAP hook) and checks the report each worker process wrote to its log. Slow (each
# test file takes minutes), so it is not part of scripts/test.sh; docs/RELIABILITY.md
# ("Valgrind") has the results of a full run.
#
#   bash scripts/valgrind.sh                  # the default tests, on the release build in build/
#   bash scripts/valgrind.sh test_rest_api.py test_distributed.py:DistributedTest.test_1_create_through_follower
#   FERRY_VG_BUILD=/tmp/b bash scripts/valgrind.sh   # another (release) build directory
#   FERRY_VG_KEEP=1 bash scripts/valgrind.sh  # keep the clusters' temp dirs (worker logs)
#
# Exit code: non-zero if a test failed, or if any worker reported a memcheck error or
# definitely lost memory. Workers a test kills with SIGKILL write no report; they are counted
# apart. Suppressions: tests/valgrind.supp (third-party leaks only, each with its reason).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=$(cd "${FERRY_VG_BUILD:-build}" && pwd)
[ -x "$build/ferry-worker" ] || { echo "valgrind.sh: no $build/ferry-worker (build first)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }
if [ $# -eq 0 ]; then
    set -- test_rest_api.py test_replication.py \
        test_distributed.py:DistributedTest.test_1_create_through_follower test_rest_security.py
fi
export FERRY_WRAP="valgrind -s --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --suppressions=$src/tests/valgrind.supp"
export FERRY_BUILD=$build FERRY_SRC=$src FERRY_KEEP=1
work=$(mktemp -d /tmp/ferry-valgrind.XXXXXX)
echo "valgrind.sh: $(valgrind --version), build $build, commit $(git rev-parse --short HEAD)"
echo "FERRY_WRAP=\"$FERRY_WRAP\""
status=0
for spec in "$@"; do
    file=${spec%%:*}
    names=()
    [ "$spec" = "$file" ] || IFS=, read -r -a names <<<"${spec#*:}"
    out="$work/$(basename "$file" .py).out"
    start=$(date +%s)
    if python3 "tests/integration/$file" "${names[@]}" >"$out" 2>&1; then result=ok; else result=FAILED; status=1; fi
    secs=$(($(date +%s) - start))
    dirs=$(sed -n 's/.*kept temp dir //p' "$out")
    # shellcheck disable=SC2086
    python3 - "$spec" "$result" "$secs" "$out" $dirs <<'EOF' || status=1
import glob, os, re, sys
spec, result, secs, out, dirs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
num = lambda s: int(s.replace(",", ""))
ran = re.findall(r"^Ran (\d+) tests?", open(out, errors="replace").read(), re.M)
reports, killed, bad, supp = 0, 0, [], {}
total = {"errors": 0, "definitely": 0, "indirectly": 0, "possibly": 0}
for d in dirs:
    for log in sorted(glob.glob(os.path.join(d, "worker*.log"))):
        procs = {}   # valgrind pid -> its report
        for line in open(log, errors="replace"):
            m = re.match(r"(?:==|--)(\d+)(?:==|--) (.*)", line)
            if not m:
                continue
            p = procs.setdefault(m.group(1), {"summary": False})
            if (s := re.match(r"ERROR SUMMARY: ([\d,]+) errors", m.group(2))):
                p["summary"], p["errors"] = True, num(s.group(1))
            elif (s := re.match(r"\s*(definitely|indirectly|possibly) lost: ([\d,]+) bytes", m.group(2))):
                p[s.group(1)] = num(s.group(2))
            elif (s := re.match(r"used_suppression:\s+(\d+) (\S+)", m.group(2))):
                supp[s.group(2)] = supp.get(s.group(2), 0) + int(s.group(1))
        for pid, p in procs.items():
            if not p["summary"]:
                killed += 1
                continue
            reports += 1
            for k in total:
                total[k] += p.get(k, 0)
            if p["errors"] or p.get("definitely", 0):
                bad.append(f"{log} (pid {pid}): {p['errors']} errors, "
                           f"{p.get('definitely', 0)} bytes definitely lost")
print(f"{spec}: {ran[-1] if ran else '?'} test(s) {result} in {secs} s; "
      f"{reports} worker process(es) reported: "
      f"{total['errors']} errors, definitely lost {total['definitely']} B, indirectly lost "
      f"{total['indirectly']} B, possibly lost {total['possibly']} B"
      + (f"; {killed} killed by the test (no report)" if killed else ""))
if supp:
    print("  suppressed: " + ", ".join(f"{k} x{v}" for k, v in sorted(supp.items())))
for b in bad:
    print("  BAD " + b)
if not dirs:
    print("  no kept cluster dir found in the test's output", file=sys.stderr)
sys.exit(1 if bad or result != "ok" or not reports else 0)
EOF
    if [ "$result" != ok ]; then
        echo "  test output: $out" >&2
        tail -30 "$out" >&2
    fi
    if [ "${FERRY_VG_KEEP:-0}" = 1 ] || [ "$status" != 0 ]; then
        [ -z "$dirs" ] || echo "  kept:" $dirs
    else
        # shellcheck disable=SC2086
        rm -rf $dirs
    fi
done
if [ "$status" = 0 ]; then rm -rf "$work"; else echo "valgrind.sh: FAILED (test outputs in $work)" >&2; fi
exit "$status"
