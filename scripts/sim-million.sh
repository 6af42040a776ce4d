#!/usr/bin/env bash
# A long run of the deterministic consensus simulation (docs/consensus.md,
# "Simulation"): COUNT seed-runs from START, split into chunks of CHUNK seeds,
# JOBS processes at a time (one per core, each single-threaded), every
# chunk's output and summary in a log directory. Resumable: a chunk whose
# summary says complete is skipped, so an interrupted run (Ctrl-C, end of a
# session) picks up where it stopped when started again with the same
# directory. At the end (and with --summary alone) it prints the combined
# summary: seed-runs, failures with their replay commands, the worst
# liveness bound, per-scenario and per-n tables, wall time and rate.
#
#   scripts/sim-million.sh                              # seeds 0..999,999, 2 processes
#   scripts/sim-million.sh --count 20000 --chunk 5000   # a smaller range
#   scripts/sim-million.sh --dir /data/sim-1m           # logs somewhere durable
#   scripts/sim-million.sh --dir /data/sim-1m --summary # combined summary only
#
# Options: --start S (0), --count N (1000000), --chunk C (10000), --jobs K
# (2), --dir DIR ($CARGO_TARGET_DIR or target, then /sim-million). SIM_SCENARIO,
# SIM_N and SIM_MUTATION pass through to every chunk, as in the test.
#
# The test binary is built once (release) and copied into DIR/bin, with the
# commit it was built from in DIR/run.info; every later session reuses that
# copy, so all chunks of one directory run the same code. A directory made
# with another --start, --chunk, SIM_SCENARIO, SIM_N or SIM_MUTATION refuses
# to resume; --count may change (to extend a range).
set -euo pipefail
cd "$(dirname "$0")/.."

start=0 count=1000000 chunk=10000 jobs=2 dir="" summary_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --start) start="$2"; shift 2 ;;
    --count) count="$2"; shift 2 ;;
    --chunk) chunk="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --summary) summary_only=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "sim-million: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in start count chunk jobs; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "sim-million: --$v needs a number" >&2; exit 2; }
done
[ "$chunk" -ge 1 ] && [ "$jobs" -ge 1 ] || { echo "sim-million: --chunk and --jobs must be >= 1" >&2; exit 2; }
dir="${dir:-${CARGO_TARGET_DIR:-target}/sim-million}"
mkdir -p "$dir/chunks" "$dir/bin"
dir=$(cd "$dir" && pwd)

# What this directory is a run of: a resume must match it.
# (--count may change: chunk boundaries stay the same.)
settings="start=$start chunk=$chunk scenario=${SIM_SCENARIO:-all} n=${SIM_N:-all} mutation=${SIM_MUTATION:-none}"
exe="$dir/bin/simulation"

prepare() {
  if [ -f "$dir/run.info" ]; then
    local had
    had=$(sed -n 's/^settings: //p' "$dir/run.info")
    if [ "$had" != "$settings" ]; then
      echo "sim-million: $dir holds a run of: $had" >&2
      echo "sim-million: not of: $settings (use another --dir)" >&2
      exit 2
    fi
  fi
  if [ ! -x "$exe" ]; then
    local built
    built=$(cargo test --release -p alliance-consensus --test simulation --no-run 2>&1 |
      sed -n 's/.*Executable tests\/simulation.rs (\(.*\))/\1/p' | tail -1)
    [ -x "$built" ] || { echo "sim-million: could not build the simulation test" >&2; exit 1; }
    cp "$built" "$exe.tmp" && mv "$exe.tmp" "$exe"
    local commit dirty
    commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    dirty=$(git status --porcelain -- node/consensus node/protocol 2>/dev/null | wc -l)
    {
      echo "settings: $settings"
      echo "commit: $commit"
      echo "uncommitted files under node/consensus and node/protocol at build: $dirty"
      echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname) ($(nproc) cores)"
    } >"$dir/run.info"
  fi
}

# Runs one chunk (its first seed as $1) unless its summary says complete.
run_chunk() {
  local s="$1" n="$2" log="$dir/chunks/$1.log" sum="$dir/chunks/$1.summary"
  if grep -qs '^status: complete' "$sum"; then return 0; fi
  local t0 t1 rc=0 timer=()
  # CPU time too: wall time depends on what else the machine runs.
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -f '%U %S' -o "$sum.cpu")
  t0=$(date +%s.%N)
  SIM_SEED_START="$s" SIM_SEEDS="$n" SIM_THREADS=1 \
    "${timer[@]}" "$exe" simulation_is_safe_and_live --exact --nocapture >"$log.tmp" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  # Killed (Ctrl-C, end of session): no summary, the chunk runs again.
  if [ "$rc" -gt 128 ]; then rm -f "$log.tmp"; return 0; fi
  mv "$log.tmp" "$log"
  local line status
  line=$(grep -m1 "^simulation: $n seeds in" "$log" || true)
  if [ -n "$line" ]; then status=complete; else status=crashed; fi
  {
    echo "first seed: $s"
    echo "seeds: $n"
    if [ -n "$line" ]; then
      echo "failures: $(echo "$line" | sed -n 's/.*, \([0-9]*\) failures$/\1/p')"
      echo "steps: $(echo "$line" | sed -n 's/.* s, \([0-9]*\) steps,.*/\1/p')"
      sed -n 's/^worst liveness bound ([^)]*): \([0-9]*\) views (seed \([0-9]*\)), \([0-9]*\) ms (seed \([0-9]*\))$/worst views: \1 \2\nworst ms: \3 \4/p' "$log"
      sed -n 's/^blocks finalized: \([0-9]*\) .*/blocks finalized: \1/p' "$log"
      # One replay command per failing seed.
      local env=""
      [ -n "${SIM_SCENARIO:-}" ] && env+="SIM_SCENARIO=$SIM_SCENARIO "
      [ -n "${SIM_N:-}" ] && env+="SIM_N=$SIM_N "
      [ -n "${SIM_MUTATION:-}" ] && env+="SIM_MUTATION=$SIM_MUTATION "
      sed -n 's/^failed seed \([0-9]*\): .*/\1/p' "$log" | while read -r f; do
        echo "replay: ${env}SIM_SEED=$f cargo test --release -p alliance-consensus --test simulation simulation_is_safe_and_live -- --nocapture   # $(grep -m1 "^failed seed $f: " "$log" | cut -d' ' -f4-6)"
      done
    else
      # The process died without a summary (a panic in the core or the
      # harness): every seed of the chunk counts as unverified.
      echo "failures: $n"
      echo "crash: $(grep -m1 'panicked' "$log" || echo "exit code $rc")"
    fi
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "wall s: %.1f\n", b - a }'
    [ -s "$sum.cpu" ] && awk 'NF == 2 { printf "cpu s: %.1f\n", $1 + $2 }' "$sum.cpu"
    echo "exit code: $rc"
    echo "status: $status"
  } >"$sum.tmp"
  rm -f "$sum.cpu"
  mv "$sum.tmp" "$sum"
  awk -v s="$s" -v n="$n" -v st="$status" '
    /^failures: / { f = $2 } /^worst views: / { v = $3; vs = $4 } /^wall s: / { w = $3 } /^cpu s: / { c = $3 }
    END { printf "sim-million: chunk %d (+%d) %s: %d failures, worst %d views (seed %d), %.1f s wall, %.1f s cpu\n", s, n, st, f, v, vs, w, c }' "$sum"
}

# The combined summary of every chunk in the directory for this range.
summarize() {
  local sums=() logs=() s
  for ((s = start; s < start + count; s += chunk)); do
    if grep -qs '^status: ' "$dir/chunks/$s.summary"; then
      sums+=("$dir/chunks/$s.summary")
      [ -f "$dir/chunks/$s.log" ] && logs+=("$dir/chunks/$s.log")
    fi
  done
  local total=$(( (count + chunk - 1) / chunk ))
  echo "== sim-million: $dir"
  [ -f "$dir/run.info" ] && sed 's/^/   /' "$dir/run.info"
  if [ ${#sums[@]} -eq 0 ]; then echo "   no chunk complete yet (of $total)"; return 0; fi
  awk -v total="$total" -v jobs="$jobs" '
    /^seeds: / { seeds += $2; chunks++ }
    /^failures: / { fails += $2 }
    /^steps: / { steps += $2 }
    /^blocks finalized: / { blocks += $3 }
    /^worst views: / { if ($3 > wv) { wv = $3; wvs = $4 } }
    /^worst ms: / { if ($3 > wm) { wm = $3; wms = $4 } }
    /^wall s: / { wall += $3 }
    /^cpu s: / { cpu += $3; cpu_seeds += seeds_here }
    /^seeds: / { seeds_here = $2 }
    /^status: crashed/ { crashed++ }
    END {
      printf "   chunks run: %d of %d (%d crashed)\n", chunks, total, crashed
      printf "   seed-runs: %d, failures: %d\n", seeds, fails
      printf "   worst liveness bound: %d views (seed %d), %d ms (seed %d)\n", wv, wvs, wm, wms
      printf "   events simulated: %.0f; blocks finalized (highest height per seed, summed): %.0f\n", steps, blocks
      if (seeds > 0) {
        printf "   chunk wall time, summed: %.0f s = %.2f ms per seed-run in one process\n", wall, 1000 * wall / seeds
        printf "   projected wall time for 1,000,000 seed-runs with %d processes: %.1f h\n", jobs, wall / seeds * 1000000 / jobs / 3600
      }
      if (cpu_seeds > 0) {
        printf "   cpu time: %.2f ms per seed-run; 1,000,000 seed-runs on %d otherwise idle cores: %.1f h\n", 1000 * cpu / cpu_seeds, jobs, cpu / cpu_seeds * 1000000 / jobs / 3600
      }
    }' "${sums[@]}"
  grep -h '^replay: ' "${sums[@]}" | sed 's/^replay: /   FAILED: /' || true
  grep -h '^crash: ' "${sums[@]}" | sed 's/^crash: /   CRASHED: /' || true
  [ ${#logs[@]} -eq 0 ] && return 0
  # Per scenario (over n) and per n, from every chunk's table.
  grep -h '^  [a-z_]* ' "${logs[@]}" | sed 's/(s\([0-9]*\) *)/\1/g' |
    awk '
      NF != 8 || $1 !~ /^[a-z_]+$/ { next }
      { for (i = 2; i <= 8; i++) if ($i !~ /^[0-9]+$/) next }
      {
        name = $1; n = $2
        if (!(name in runs)) { order[++k] = name; lo[name] = n; hi[name] = n }
        runs[name] += $3; fail[name] += $4
        if (n < lo[name]) lo[name] = n
        if (n > hi[name]) hi[name] = n
        if ($5 > wv[name]) { wv[name] = $5; wvs[name] = $6 }
        if ($7 > wm[name]) { wm[name] = $7; wms[name] = $8 }
        nruns[n] += $3; nfail[n] += $4
        if ($5 > nwv[n]) { nwv[n] = $5; nwvs[n] = $6 }
        if ($7 > nwm[n]) { nwm[n] = $7; nwms[n] = $8 }
      }
      END {
        printf "   %-21s %-6s %9s %6s %17s %17s\n", "scenario", "n", "runs", "fail", "worst views", "worst ms"
        for (i = 1; i <= k; i++) {
          s = order[i]
          printf "   %-21s %-6s %9d %6d %6d (s%-8d) %6d (s%-8d)\n", s, lo[s] "-" hi[s], runs[s], fail[s], wv[s], wvs[s], wm[s], wms[s]
        }
        for (n = 1; n <= 64; n++) if (n in nruns)
          printf "   %-21s %-6s %9d %6d %6d (s%-8d) %6d (s%-8d)\n", "(all)", n, nruns[n], nfail[n], nwv[n], nwvs[n], nwm[n], nwms[n]
      }'
  # Counters summed over the chunks (honest nodes' stats, faults that struck).
  grep -h '^faults that struck' "${logs[@]}" | grep -o '"[a-z_]*": [0-9]*' | tr -d '":' |
    awk '{ c[$1] += $2 } END { for (k in c) print k, c[k] }' | sort | awk '{ printf "%s %s %d", (NR == 1 ? "   faults that struck:" : ";"), $1, $2 } END { print "" }'
  grep -h "honest nodes' counters" "${logs[@]}" | sed 's/.*Stats {//; s/}.*//' | tr ',' '\n' | tr -d ':' |
    awk 'NF == 2 { c[$1] += $2 } END { for (k in c) print k, c[k] }' | sort | awk '{ printf "%s %s %d", (NR == 1 ? "   honest counters:" : ";"), $1, $2 } END { print "" }'
}

if [ "$summary_only" = 1 ]; then summarize; exit 0; fi
# One run per directory at a time (two would run the same chunks and write
# the same logs), and stopping the script stops its workers too.
exec 9>"$dir/lock"
flock -n 9 || { echo "sim-million: another run is using $dir (see $dir/lock)" >&2; exit 1; }
trap 'trap - INT TERM; kill 0' INT TERM
prepare
export -f run_chunk
export dir exe
t0=$(date +%s)
todo=0 todo_seeds=0
for ((s = start; s < start + count; s += chunk)); do
  n=$chunk
  [ $((s + n)) -gt $((start + count)) ] && n=$((start + count - s))
  grep -qs '^status: complete' "$dir/chunks/$s.summary" || { todo=$((todo + 1)); todo_seeds=$((todo_seeds + n)); }
done
echo "sim-million: seeds $start..$((start + count - 1)) in chunks of $chunk, $todo to run, $jobs processes, logs in $dir"
for ((s = start; s < start + count; s += chunk)); do
  n=$chunk
  [ $((s + n)) -gt $((start + count)) ] && n=$((start + count - s))
  echo "$s $n"
done | xargs -P "$jobs" -n 2 bash -c 'run_chunk "$1" "$2"' _
secs=$(( $(date +%s) - t0 ))
awk -v c="$todo" -v n="$todo_seeds" -v s="$secs" -v j="$jobs" 'BEGIN {
  printf "sim-million: this session ran %d chunks (%d seed-runs) in %d s wall with %d processes", c, n, s, j
  if (n > 0 && s > 0) printf ": %.2f ms per seed-run, 1,000,000 seed-runs in %.1f h at this rate", 1000 * s / n, s / n * 1000000 / 3600
  print ""
}'
summarize
