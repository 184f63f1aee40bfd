#!/usr/bin/env bash
# Fuzz itb-core with cargo-fuzz (libFuzzer), one target after another, one job, at low priority.
#
#   scripts/fuzz.sh [MINUTES] [TARGET...]     # default: 5 minutes each of ops restore restore_payload
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# Corpus: rust/core/fuzz/corpus/<target> (minimised with `cargo fuzz cmin` after each run).
# Crashes: rust/core/fuzz/artifacts/<target>/ (gitignored). Logs: rust/core/fuzz/artifacts/<target>.log.
# Environment: FUZZ_CMIN=0 skips minimisation; FUZZ_ARGS adds libFuzzer flags.
set -euo pipefail

minutes="${1:-5}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(ops restore restore_payload)
fi

here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here/rust/core/fuzz"
secs=$((minutes * 60))

for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "== fuzzing $t for $minutes min (nice 19, one process: libFuzzer in-process, no -jobs/-workers children) =="
  # Build first so the time budget is spent fuzzing.
  nice -n 19 cargo +nightly fuzz build "$t"
  status=0
  nice -n 19 cargo +nightly fuzz run "$t" "corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" ${FUZZ_ARGS:-} 2>&1 | tee "artifacts/$t.log" || status=$?
  grep -E '^#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::average_exec_per_sec' "artifacts/$t.log" | tail -3 || true
  if [ "$status" -ne 0 ]; then
    echo "!! $t stopped with status $status: see artifacts/$t/ and artifacts/$t.log"
  fi
  if [ "${FUZZ_CMIN:-1}" != 0 ]; then
    nice -n 19 cargo +nightly fuzz cmin "$t" "corpus/$t" >/dev/null 2>&1 || echo "!! cmin of $t failed"
    echo "corpus/$t: $(ls "corpus/$t" | wc -l) files, $(du -sk "corpus/$t" | cut -f1) KB"
  fi
done
