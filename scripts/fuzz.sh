#!/usr/bin/env bash
# Fuzz itb-core with cargo-fuzz (libFuzzer), one target after another, one process, nice 19.
#
#   scripts/fuzz.sh [MINUTES] [TARGET...]     # default: 5 minutes each of ops restore restore_payload
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# Corpus: the working corpus is rust/core/fuzz/corpus-local/<target> (gitignored, grows with
# every run, minimised with `cargo fuzz cmin` after it); rust/core/fuzz/corpus/<target> is the
# small committed seed (read by every run; refreshed from the working corpus with
# FUZZ_SEED=1, keeping at most 50 files / 200 KB).
# Crashes: rust/core/fuzz/artifacts/<target>/ (gitignored); log: artifacts/<target>.log.
# Environment: FUZZ_CMIN=0 skips minimisation; FUZZ_SEED=1 refreshes the seed; FUZZ_ARGS adds
# libFuzzer flags.
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
  local_corpus="corpus-local/$t"
  seed="corpus/$t"
  mkdir -p "$local_corpus" "$seed" "artifacts/$t"
  echo "== fuzzing $t for $minutes min (nice 19, one libFuzzer process, no -jobs/-workers/-fork) =="
  # Build first so the time budget is spent fuzzing.
  nice -n 19 cargo +nightly fuzz build "$t"
  status=0
  # New inputs go to the first directory (the working corpus); the seed is only read.
  nice -n 19 cargo +nightly fuzz run "$t" "$local_corpus" "$seed" -- \
    -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" ${FUZZ_ARGS:-} 2>&1 | tee "artifacts/$t.log" || status=$?
  grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec' "artifacts/$t.log" || true
  if [ "$status" -ne 0 ]; then
    echo "!! $t stopped with status $status: see artifacts/$t/ and artifacts/$t.log"
  fi
  if [ "${FUZZ_CMIN:-1}" != 0 ]; then
    nice -n 19 cargo +nightly fuzz cmin "$t" "$local_corpus" >/dev/null 2>&1 || echo "!! cmin of $t failed"
    echo "$local_corpus: $(ls "$local_corpus" | wc -l) files, $(du -sk "$local_corpus" | cut -f1) KB"
  fi
  if [ "${FUZZ_SEED:-0}" = 1 ]; then
    # A small, stable sample of the minimised corpus: files under 8 KB in name (hash) order.
    rm -f "$seed"/*
    kb=0
    n=0
    for f in $(ls "$local_corpus" | sort); do
      size=$(( ($(stat -c %s "$local_corpus/$f") + 1023) / 1024 ))
      if [ "$size" -gt 8 ] || [ $((kb + size)) -gt 200 ]; then continue; fi
      cp "$local_corpus/$f" "$seed/"
      kb=$((kb + size)); n=$((n + 1))
      if [ "$n" -ge 50 ]; then break; fi
    done
    echo "$seed: $n files, ${kb} KB (committed seed)"
  fi
done
