//! Every stroke time of a constant-increment span, written out fast (issue 8, part 5).
//!
//! Stroke `j` (1-based) of a span starting at `t0` with remainder `a`, increment `s` per ms
//! and stroke gain `g` fires at `t0 + ceil((j·g − a) / s)`. The delivery module's scalar loop
//! steps from one stroke to the next by the whole-ms quotient of `g / s` and carries the
//! remainder: one dependent chain of a few instructions per stroke. Here `LANES` independent
//! chains each step `LANES` strokes at once (quotient and remainder of `LANES·g / s`), so the
//! CPU runs them in parallel; the times are exactly the same integers (tested against the
//! scalar loop and the closed form).

/// Independent chains; each handles every `LANES`-th stroke (4: they and the constants stay in
/// registers).
const LANES: usize = 4;

/// Append the times of strokes `1..=n` (`n >= 0`) to `out` if every quantity fits in i64
/// (always for models within the core's limits) and returns true; false (nothing appended)
/// otherwise, for the caller's general loop.
#[inline(never)] // its own registers: inlined into the advance loop, the lanes spill to the stack
pub(crate) fn append_lane_times(
    out: &mut Vec<i64>,
    t0: i64,
    a: i128,
    slope: i128,
    gain: i128,
    n: i64,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: this CPU has AVX2 (checked just above), all `lanes_avx2` needs.
        return unsafe { lanes_avx2(out, t0, a, slope, gain, n) };
    }
    lanes::<LANES>(out, t0, a, slope, gain, n)
}

/// [`lanes`] with 8 chains compiled for AVX2: the chains step in two vector registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn lanes_avx2(
    out: &mut Vec<i64>,
    t0: i64,
    a: i128,
    slope: i128,
    gain: i128,
    n: i64,
) -> bool {
    lanes::<8>(out, t0, a, slope, gain, n)
}

/// The stroke times with `L` independent chains (see [`append_lane_times`]).
#[inline(always)]
fn lanes<const L: usize>(
    out: &mut Vec<i64>,
    t0: i64,
    a: i128,
    slope: i128,
    gain: i128,
    n: i64,
) -> bool {
    let Ok(n) = usize::try_from(n) else {
        return false;
    };
    if n < 2 * L || slope <= 0 || a < 0 || a >= gain {
        return false;
    }
    let lanes = L as i128;
    let (Ok(s), Ok(g), Ok(step)) = (
        i64::try_from(slope),
        i64::try_from(gain),
        i64::try_from(gain * lanes),
    ) else {
        return false;
    };
    // One stroke further: the whole-ms quotient of g / s, plus 1 when the remainder carries.
    let (q1, r1) = (g / s, g % s);
    let need = g - a as i64; // 0 < need <= g
    let dt = (need + s - 1) / s;
    let (mut t, mut slack) = ([0i64; L], [0i64; L]);
    t[0] = t0 + dt;
    slack[0] = dt * s - need; // 0 <= slack < s: how far the accumulator overshoots at the stroke
    for l in 1..L {
        let rem = r1 - slack[l - 1];
        let carry = i64::from(rem > 0);
        t[l] = t[l - 1] + q1 + carry;
        slack[l] = carry * s - rem;
    }
    // Every written time fits: the last is at most (n − 1)·(q1 + 1) after the first.
    let fits = i64::try_from(n - 1)
        .ok()
        .and_then(|k| k.checked_mul(q1 + 1))
        .and_then(|d| d.checked_add(t[0]));
    if fits.is_none() {
        return false;
    }
    let (q, r) = (step / s, step % s);
    // Written once, straight into the spare capacity (no zero-fill pass first: at 10⁶ strokes
    // the memory traffic is the cost).
    out.reserve(n);
    let spare = &mut out.spare_capacity_mut()[..n];
    let mut chunks = spare.chunks_exact_mut(L);
    for chunk in &mut chunks {
        for l in 0..L {
            chunk[l].write(t[l]);
            // Next threshold of this lane is L·g further; the overshoot covers `slack`.
            // Branch-free (add, sub, shift, and: the lanes vectorize even on baseline x86-64):
            // carry = 1 when the remainder passes the slack, i.e. when rem > 0.
            let rem = r - slack[l]; // in (−s, s)
            let carry = (rem.wrapping_neg() as u64 >> 63) as i64;
            t[l] = t[l].wrapping_add(q + carry); // only values past stroke n can wrap: never written
            slack[l] = (s & carry.wrapping_neg()) - rem;
        }
    }
    for (slot, &time) in chunks.into_remainder().iter_mut().zip(&t) {
        slot.write(time);
    }
    let len = out.len() + n;
    // SAFETY: `reserve(n)` made room for n more elements and the loops above initialized all
    // n of them (every chunk of L, then the remainder).
    unsafe { out.set_len(len) };
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::div_ceil;
    use proptest::prelude::*;

    fn closed_form(t0: i64, a: i128, slope: i128, gain: i128, n: i64) -> Vec<i64> {
        (1..=i128::from(n))
            .map(|j| t0 + div_ceil(j * gain - a, slope) as i64)
            .collect()
    }

    proptest! {
        #[test]
        fn lanes_equal_the_closed_form(
            t0 in -62_135_596_800_000i64..253_402_300_799_999,
            stroke_nl in 1i64..=1_000_000,
            slope in 1i128..=100_000_000_000,
            a_frac in 0.0f64..1.0,
            n in 0i64..500,
        ) {
            let gain = i128::from(stroke_nl) * 86_400_000;
            let a = ((gain as f64) * a_frac) as i128 % gain;
            let expected = closed_form(t0, a, slope, gain, n);
            if expected.last().is_some_and(|&t| t > 253_402_300_799_999) {
                return Ok(());
            }
            type Writer = fn(&mut Vec<i64>, i64, i128, i128, i128, i64) -> bool;
            let runs: [(Writer, i64); 3] =
                [(append_lane_times, 16), (lanes::<4>, 8), (lanes::<8>, 16)];
            for (run, min_n) in runs {
                let mut out = vec![7];
                if run(&mut out, t0, a, slope, gain, n) {
                    prop_assert_eq!(&out[..1], &[7]);
                    prop_assert_eq!(&out[1..], &expected[..]);
                } else {
                    prop_assert!(n < min_n);
                    prop_assert_eq!(out, vec![7]);
                }
            }
        }
    }

    #[test]
    fn small_and_degenerate_spans_are_left_to_the_caller() {
        let mut out = Vec::new();
        assert!(!lanes::<4>(&mut out, 0, 0, 5, 10, 7));
        assert!(!lanes::<8>(&mut out, 0, 0, 5, 10, 15));
        assert!(!append_lane_times(&mut out, 0, 0, 0, 10, 100));
        assert!(!append_lane_times(&mut out, 0, 0, 5, 10, -1));
        assert!(out.is_empty());
        for n in [16, 19, 1000] {
            for run in [append_lane_times, lanes::<4>, lanes::<8>] {
                out.clear();
                assert!(run(&mut out, 0, 3, 5, 10, n));
                assert_eq!(out, closed_form(0, 3, 5, 10, n));
            }
        }
    }
}
