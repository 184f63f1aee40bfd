//! Every stroke time of a constant-increment span, written out fast (issue 8, part 5).
//!
//! Stroke `j` (1-based) of a span starting at `t0` with remainder `a`, increment `s` per ms
//! and stroke gain `g` fires at `t0 + ceil((j·g − a) / s)`. The delivery module's scalar loop
//! steps from one stroke to the next by the whole-ms quotient of `g / s` and carries the
//! remainder: one dependent chain of a few instructions per stroke. Here `LANES` independent
//! chains each step `LANES` strokes at once (quotient and remainder of `LANES·g / s`), so the
//! CPU runs them in parallel; the times are exactly the same integers (tested against the
//! scalar loop and the closed form).

/// Independent chains; each handles every `LANES`-th stroke.
const LANES: usize = 8;

/// Append the times of strokes `1..=n` (`n >= 0`) to `out` if every quantity fits in i64
/// (always for models within the core's limits) and returns true; false (nothing appended)
/// otherwise, for the caller's general loop.
pub(crate) fn append_lane_times(out: &mut Vec<i64>, t0: i64, a: i128, slope: i128, gain: i128, n: i64) -> bool {
    let Ok(n) = usize::try_from(n) else { return false };
    if n < 2 * LANES || slope <= 0 || a < 0 || a >= gain {
        return false;
    }
    let lanes = LANES as i128;
    let (Ok(s), Ok(g), Ok(step)) = (i64::try_from(slope), i64::try_from(gain), i64::try_from(gain * lanes)) else {
        return false;
    };
    // One stroke further: the whole-ms quotient of g / s, plus 1 when the remainder carries.
    let (q1, r1) = (g / s, g % s);
    let need = g - a as i64; // 0 < need <= g
    let dt = (need + s - 1) / s;
    let (mut t, mut slack) = ([0i64; LANES], [0i64; LANES]);
    t[0] = t0 + dt;
    slack[0] = dt * s - need; // 0 <= slack < s: how far the accumulator overshoots at the stroke
    for l in 1..LANES {
        let rem = r1 - slack[l - 1];
        let carry = i64::from(rem > 0);
        t[l] = t[l - 1] + q1 + carry;
        slack[l] = carry * s - rem;
    }
    // Every written time fits: the last is at most (n − 1)·(q1 + 1) after the first.
    let fits = i64::try_from(n - 1).ok().and_then(|k| k.checked_mul(q1 + 1)).and_then(|d| d.checked_add(t[0]));
    if fits.is_none() {
        return false;
    }
    let (q, r) = (step / s, step % s);
    let start = out.len();
    out.resize(start + n, 0);
    let mut chunks = out[start..].chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for l in 0..LANES {
            chunk[l] = t[l];
            // Next threshold of this lane is LANES·g further; the overshoot covers `slack`.
            let rem = r - slack[l];
            let (dt, next_slack) = if rem > 0 { (q + 1, s - rem) } else { (q, -rem) };
            t[l] = t[l].wrapping_add(dt); // only values past stroke n can wrap: never written
            slack[l] = next_slack;
        }
    }
    let tail = chunks.into_remainder();
    let k = tail.len();
    tail.copy_from_slice(&t[..k]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::div_ceil;
    use proptest::prelude::*;

    fn closed_form(t0: i64, a: i128, slope: i128, gain: i128, n: i64) -> Vec<i64> {
        (1..=i128::from(n)).map(|j| t0 + div_ceil(j * gain - a, slope) as i64).collect()
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
            let mut out = vec![7];
            let expected = closed_form(t0, a, slope, gain, n);
            if expected.last().is_some_and(|&t| t > 253_402_300_799_999) {
                return Ok(());
            }
            if append_lane_times(&mut out, t0, a, slope, gain, n) {
                prop_assert_eq!(&out[..1], &[7]);
                prop_assert_eq!(&out[1..], &expected[..]);
            } else {
                prop_assert!(n < 16);
                prop_assert_eq!(out, vec![7]);
            }
        }
    }

    #[test]
    fn small_and_degenerate_spans_are_left_to_the_caller() {
        let mut out = Vec::new();
        assert!(!append_lane_times(&mut out, 0, 0, 5, 10, 15));
        assert!(!append_lane_times(&mut out, 0, 0, 0, 10, 100));
        assert!(!append_lane_times(&mut out, 0, 0, 5, 10, -1));
        assert!(out.is_empty());
        assert!(append_lane_times(&mut out, 0, 3, 5, 10, 16));
        assert_eq!(out, closed_form(0, 3, 5, 10, 16));
    }
}
