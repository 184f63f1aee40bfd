//! Exact units and the explicit rounding rules of the boundary.
//!
//! | quantity | unit |
//! |---|---|
//! | time | `i64` ms on the pump clock (naive local time; 0 = 1970-01-01 00:00, a Thursday) |
//! | volume | `i64` nL (1 mL = 1_000_000 nL) |
//! | concentration | `u32` µg/mL |
//! | drug mass | `i64` pg (= nL × µg/mL, exact) |
//! | dose rate | `i64` ng/day |
//! | volume rate | `i64` nL/day |
//!
//! Floats from users become integers by [`scaled_from_f64`]: the float's shortest round-trip
//! decimal form (Rust `Display`, identical digits to Python `repr`) is scaled by a power of ten
//! and rounded half-to-even, so 0.0125 µg is 12.5 ng → 12 ng.

use crate::error::{ItbError, Result};

/// Milliseconds per day; also the nL·ms/day per nL factor of the accumulator.
pub const MS_PER_DAY: i64 = 86_400_000;
/// Milliseconds per week.
pub const MS_PER_WEEK: i64 = 7 * MS_PER_DAY;
/// Nanoliters per milliliter.
pub const NL_PER_ML: i64 = 1_000_000;
/// Earliest pump-clock time: 0001-01-01 00:00 (Python `datetime.min`).
pub const MIN_TIME_MS: i64 = -62_135_596_800_000;
/// Latest pump-clock time: 9999-12-31 23:59:59.999 (Python `datetime.max`, truncated to ms).
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;
/// Largest concentration accepted (µg/mL).
pub const MAX_CONCENTRATION: u32 = 100_000;
/// Largest dose rate accepted (ng/day): 10 g/day, far beyond any pump.
pub const MAX_DOSE_NG_PER_DAY: i64 = 10_000_000_000_000;
/// Largest single bolus dose accepted (ng): 10 g.
pub const MAX_BOLUS_NG: i64 = 10_000_000_000_000;

/// A pump-clock time as `YYYY-MM-DDTHH:MM:SS.mmm` for messages (proleptic Gregorian, the
/// calendar of Python's `datetime`; civil-from-days after H. Hinnant).
pub fn fmt_time(t: i64) -> String {
    let days = t.div_euclid(MS_PER_DAY);
    let ms = t.rem_euclid(MS_PER_DAY);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    format!(
        "{y:04}-{m:02}-{d:02}T{h:02}:{:02}:{:02}.{:03}",
        rest / 60_000,
        rest % 60_000 / 1000,
        rest % 1000
    )
}

/// A volume in nL as mL for messages (`40000000` → `"40 mL"`, `2500` → `"0.0025 mL"`).
/// A float as short text for a message: its shortest decimal form, or scientific notation
/// (`1e+308`, as Python writes it) when that would be longer than 20 characters.
pub fn compact(x: f64) -> String {
    let plain = format!("{x}");
    if plain.len() <= 20 {
        return plain;
    }
    let sci = format!("{x:e}");
    match sci.split_once('e') {
        Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
        _ => sci,
    }
}

pub fn ml(nl: i64) -> String {
    format!("{} mL", nl as f64 / NL_PER_ML as f64)
}

/// `num / den` rounded half to even; `den` must be positive.
pub fn div_round_half_even(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den);
    let twice = 2 * r;
    if twice > den || (twice == den && q % 2 != 0) {
        q + 1
    } else {
        q
    }
}

/// `ceil(num / den)` for `den > 0`. In i64 when both fit (the usual case: several times
/// cheaper than the 128-bit division, the same result).
#[inline]
pub fn div_ceil(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    if let (Ok(n), Ok(d)) = (i64::try_from(num), i64::try_from(den)) {
        if n > i64::MIN {
            return i128::from(-((-n).div_euclid(d)));
        }
    }
    -((-num).div_euclid(den))
}

/// `num / den` rounded toward zero (Rust's `/`), `den != 0`; in i64 when both fit.
#[inline]
pub fn div_trunc(num: i128, den: i128) -> i128 {
    if let (Ok(n), Ok(d)) = (i64::try_from(num), i64::try_from(den)) {
        if let Some(q) = n.checked_div(d) {
            return i128::from(q);
        }
    }
    num / den
}

/// Convert a float in some unit to an integer in a unit `10^power` times smaller
/// (µg → ng: power 3; mL → nL: power 6), exactly from its shortest decimal form,
/// rounding half to even. Rejects NaN, infinities and negatives, and results above `max`.
pub fn scaled_from_f64(field: &str, x: f64, power: u32, max: i64, unit: &str) -> Result<i64> {
    let shown = compact(x);
    if !x.is_finite() {
        return Err(ItbError::validation(
            field,
            format!("{x} is not a finite number"),
        ));
    }
    if x == 0.0 {
        return Ok(0); // also -0.0
    }
    if x < 0.0 {
        return Err(ItbError::validation(
            field,
            format!("{shown} is negative; must be >= 0 {unit}"),
        ));
    }
    // A whole number below 2**53 is its own shortest decimal form (a shorter one would be an
    // integer at least 1 away, outside its rounding interval): no text needed.
    if x.fract() == 0.0 && x < 9_007_199_254_740_992.0 {
        if let Some(v) = 10i64
            .checked_pow(power)
            .and_then(|scale| (x as i64).checked_mul(scale))
        {
            if v <= max {
                return Ok(v);
            }
        }
    }
    let text = format!("{x}");
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text.as_str(), ""),
    };
    let most = max as f64 / 10f64.powi(power as i32);
    let too_big = || {
        ItbError::validation(
            field,
            format!("{shown} {unit} exceeds the maximum {most} {unit}"),
        )
    };
    // Integer digits beyond 20 cannot fit; reject before arithmetic.
    let int_digits = int_part.trim_start_matches('0');
    if int_digits.len() > 20 {
        return Err(too_big());
    }
    let mut value: i128 = 0;
    for c in int_digits.chars() {
        value = value * 10 + i128::from(c.to_digit(10).ok_or_else(too_big)?);
    }
    let frac: Vec<u32> = frac_part.chars().filter_map(|c| c.to_digit(10)).collect();
    let p = power as usize;
    for i in 0..p {
        value = value.checked_mul(10).ok_or_else(too_big)? + i128::from(*frac.get(i).unwrap_or(&0));
    }
    // Round half to even on the dropped digits.
    if frac.len() > p {
        let dropped = &frac[p..];
        let first = dropped[0];
        let rest_nonzero = dropped[1..].iter().any(|&d| d != 0);
        let round_up = first > 5 || (first == 5 && (rest_nonzero || value % 2 == 1));
        if round_up {
            value += 1;
        }
    }
    if value == 0 {
        // No non-zero input may become zero at any rounding step (docs: decisions/field-reports.md#no-non-zero-input-becomes-zero).
        let step = format!("{}", 10f64.powi(-(power as i32)));
        return Err(ItbError::validation(
            field,
            format!("{shown} {unit} rounds to 0 at a resolution of {step} {unit}; the smallest accepted non-zero value is {step} {unit} (or exactly 0)"),
        ));
    }
    if value > i128::from(max) {
        return Err(ItbError::validation(
            field,
            format!("{shown} {unit} exceeds the maximum {most} {unit}"),
        ));
    }
    Ok(value as i64)
}

/// Check a pump-clock time is within the representable calendar (year 1..=9999).
pub fn check_time(field: &str, t: i64) -> Result<i64> {
    if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&t) {
        return Err(ItbError::validation(
            field,
            format!(
                "{t} ms since 1970-01-01 is outside the pump clock, 0001-01-01 00:00 to 9999-12-31 23:59:59.999"
            ),
        ));
    }
    Ok(t)
}

/// Check a concentration (µg/mL) is within 1..=100_000.
pub fn check_concentration(field: &str, conc: i64) -> Result<u32> {
    if conc < 1 || conc > i64::from(MAX_CONCENTRATION) {
        return Err(ItbError::validation(
            field,
            format!("{conc} µg/mL is outside the allowed range 1 to {MAX_CONCENTRATION} µg/mL"),
        ));
    }
    Ok(conc as u32)
}

/// Volume rate (nL/day) of a dose rate (ng/day) at a concentration (µg/mL), half-even.
pub fn volume_rate_nl_per_day(ng_per_day: i64, conc: u32) -> i64 {
    div_round_half_even(i128::from(ng_per_day) * 1000, i128::from(conc)) as i64
}

/// Volume (nL) of a dose (ng) at a concentration (µg/mL), half-even.
pub fn volume_nl_of_dose(ng: i64, conc: u32) -> i64 {
    div_round_half_even(i128::from(ng) * 1000, i128::from(conc)) as i64
}

/// Smallest `t` in `(lo, hi]` with `f(t) >= target`, for a non-decreasing `f` with
/// `f(lo) < target <= f(hi)`. Interpolation (Illinois) steps with a bisection when they do not
/// halve the bracket: exact, and a handful of evaluations when `f` is close to linear (a
/// battery drain curve is, between strokes and tones).
pub(crate) fn first_at_least(f: impl Fn(i64) -> i128, target: i128, lo: i64, hi: i64) -> i64 {
    narrow(&f, target, lo, hi, 1).1
}

/// As [`first_at_least`], for an `f` that also jumps at known times (alarm tones):
/// `next_jump(t)` is the first jump time after `t`, and each source of jumps repeats at least
/// `spacing` ms apart. The search narrows the bracket below `spacing`, then splits it at the
/// few jumps left in it (one per source at most), so a crossing at a jump costs two
/// evaluations, not a bisection down to the millisecond.
pub(crate) fn first_at_least_with_jumps(
    f: impl Fn(i64) -> i128,
    target: i128,
    lo: i64,
    hi: i64,
    next_jump: impl Fn(i64) -> i64,
    spacing: i64,
) -> i64 {
    let (mut lo, mut hi) = narrow(&f, target, lo, hi, spacing.max(2) - 1);
    loop {
        let jump = next_jump(lo);
        if hi - lo <= 1 || jump > hi {
            break;
        }
        // `jump` is the first jump in (lo, hi]: no jump in (lo, jump − 1].
        if jump - 1 > lo && f(jump - 1) >= target {
            hi = jump - 1;
            break;
        }
        // f(jump − 1) < target here (or jump − 1 is lo).
        if f(jump) >= target {
            return jump;
        }
        lo = jump;
    }
    narrow(&f, target, lo, hi, 1).1
}

/// Shrink the bracket `(lo, hi]` of [`first_at_least`] until `hi − lo <= width` (>= 1):
/// interpolation between the ends' values, where an end kept twice in a row has its distance
/// to the target halved (Illinois: no stalling on one side, as plain regula falsi does on a
/// curve with a kink), and a bisection every fourth step unless the bracket at least halved
/// since the last one. Any choice of guesses gives the same exact answer; these only make it
/// take few evaluations.
fn narrow(
    f: &impl Fn(i64) -> i128,
    target: i128,
    mut lo: i64,
    mut hi: i64,
    width: i64,
) -> (i64, i64) {
    if hi - lo <= width {
        return (lo, hi);
    }
    let (mut w_lo, mut w_hi) = (f(lo), f(hi));
    let mut kept = 0i8; // 1: hi moved last (lo kept), -1: lo moved last (hi kept)
    let mut step = 0u32;
    let mut checkpoint = hi - lo;
    while hi - lo > width {
        step += 1;
        let span = hi - lo;
        let check = step.is_multiple_of(4);
        let guess = if (check && span > checkpoint / 2) || w_hi <= w_lo {
            lo + span / 2
        } else {
            let offset = div_ceil((target - w_lo) * i128::from(span), w_hi - w_lo);
            lo + offset.clamp(1, i128::from(span) - 1) as i64
        };
        if check {
            checkpoint = span;
        }
        let f_guess = f(guess);
        if f_guess >= target {
            hi = guess;
            w_hi = f_guess;
            if kept == 1 {
                w_lo = target - (target - w_lo) / 2;
            }
            kept = 1;
        } else {
            lo = guess;
            w_lo = f_guess;
            if kept == -1 {
                w_hi = target + (w_hi - target) / 2;
            }
            kept = -1;
        }
    }
    (lo, hi)
}

#[cfg(test)]
mod fast_division_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fast_divisions_equal_the_128_bit_ones(
            num in (i128::MIN + 1)..=i128::MAX,
            den in 1i128..=i128::MAX,
            small in (i64::MIN)..=i64::MAX,
            d64 in 1i64..=i64::MAX,
        ) {
            let cases = [(num, den), (i128::from(small), i128::from(d64)), (i128::from(small), den), (num, i128::from(d64))];
            for (n, d) in cases {
                prop_assert_eq!(div_ceil(n, d), -((-n).div_euclid(d)));
                prop_assert_eq!(div_trunc(n, d), n / d);
                prop_assert_eq!(div_trunc(n, -d), n / -d);
            }
        }
    }

    /// The text path alone (what `scaled_from_f64` did before its whole-number shortcut).
    fn scaled_by_text(x: f64, power: u32, max: i64) -> Option<i64> {
        let text = format!("{x}");
        let (int_part, frac_part) = text.split_once('.').unwrap_or((text.as_str(), ""));
        let mut value: i128 = int_part.parse().ok()?;
        let frac: Vec<i128> = frac_part
            .chars()
            .map(|c| i128::from(c.to_digit(10).unwrap_or(0)))
            .collect();
        for i in 0..power as usize {
            value = value.checked_mul(10)? + frac.get(i).copied().unwrap_or(0);
        }
        if frac.len() > power as usize {
            let (first, rest) = (
                frac[power as usize],
                frac[power as usize + 1..].iter().any(|&d| d != 0),
            );
            if first > 5 || (first == 5 && (rest || value % 2 == 1)) {
                value += 1;
            }
        }
        (value > 0 && value <= i128::from(max)).then_some(value as i64)
    }

    proptest! {
        #[test]
        fn whole_numbers_scale_as_their_text(n in 0u64..(1 << 53), power in 0u32..=18, max in any::<i64>()) {
            let x = n as f64;
            prop_assume!(x > 0.0);
            let fast = scaled_from_f64("f", x, power, max, "u").ok();
            prop_assert_eq!(fast, scaled_by_text(x, power, max));
        }
    }

    #[test]
    fn fast_divisions_at_the_i64_edges() {
        for n in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX] {
            for d in [1i64, 2, 3, i64::MAX] {
                let (n, d) = (i128::from(n), i128::from(d));
                assert_eq!(div_ceil(n, d), -((-n).div_euclid(d)));
                assert_eq!(div_trunc(n, d), n / d);
                assert_eq!(div_trunc(n, -d), n / -d);
            }
        }
        assert_eq!(div_trunc(i128::from(i64::MIN), -1), -i128::from(i64::MIN));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_values_read_compactly() {
        assert_eq!(compact(41.0), "41");
        assert_eq!(compact(0.000001), "0.000001");
        assert_eq!(compact(1e308), "1e+308");
        assert_eq!(compact(1.5e300), "1.5e+300");
        assert_eq!(compact(1e-30), "1e-30");
        let err = scaled_from_f64("reservoir_ml", 1e308, 6, i64::MAX, "mL").unwrap_err();
        assert!(
            err.to_string().contains("1e+308 mL exceeds the maximum"),
            "{err}"
        );
    }

    #[test]
    fn half_even_from_shortest_decimal() {
        assert_eq!(scaled_from_f64("x", 0.0125, 3, i64::MAX, "").unwrap(), 12);
        assert_eq!(scaled_from_f64("x", 0.0135, 3, i64::MAX, "").unwrap(), 14);
        assert_eq!(scaled_from_f64("x", 2.5, 0, i64::MAX, "").unwrap(), 2);
        assert_eq!(scaled_from_f64("x", 3.5, 0, i64::MAX, "").unwrap(), 4);
        assert_eq!(
            scaled_from_f64("x", 0.048, 6, i64::MAX, "").unwrap(),
            48_000
        );
        assert!(scaled_from_f64("x", 1e-7, 6, i64::MAX, "").is_err()); // non-zero never becomes 0
        assert!(scaled_from_f64("x", 0.0005, 3, i64::MAX, "").is_err()); // 0.5 ng → 0 half-even
        assert_eq!(scaled_from_f64("x", 0.0006, 3, i64::MAX, "").unwrap(), 1);
        assert_eq!(scaled_from_f64("x", 0.0015, 3, i64::MAX, "").unwrap(), 2);
        assert_eq!(
            scaled_from_f64("x", 2.0000005, 6, i64::MAX, "").unwrap(),
            2_000_000
        );
        assert_eq!(
            scaled_from_f64("x", 2.0000015, 6, i64::MAX, "").unwrap(),
            2_000_002
        );
        assert_eq!(scaled_from_f64("x", -0.0, 3, i64::MAX, "").unwrap(), 0);
        assert!(scaled_from_f64("x", f64::NAN, 3, i64::MAX, "").is_err());
        assert!(scaled_from_f64("x", -1.0, 3, i64::MAX, "").is_err());
        assert!(scaled_from_f64("x", 1e300, 3, i64::MAX, "").is_err());
        assert!(scaled_from_f64("x", f64::MAX, 3, i64::MAX, "").is_err());
    }

    #[test]
    fn times_for_messages() {
        assert_eq!(fmt_time(0), "1970-01-01T00:00:00.000");
        assert_eq!(fmt_time(1_767_600_000_000), "2026-01-05T08:00:00.000");
        assert_eq!(
            fmt_time(951_782_400_000 + 3_723_004),
            "2000-02-29T01:02:03.004"
        );
        assert_eq!(fmt_time(-1), "1969-12-31T23:59:59.999");
        assert_eq!(fmt_time(MIN_TIME_MS), "0001-01-01T00:00:00.000");
        assert_eq!(fmt_time(MAX_TIME_MS), "9999-12-31T23:59:59.999");
    }

    #[test]
    fn rational_rounding() {
        assert_eq!(div_round_half_even(5, 2), 2);
        assert_eq!(div_round_half_even(7, 2), 4);
        assert_eq!(div_round_half_even(-5, 2), -2);
        assert_eq!(div_ceil(7, 2), 4);
        assert_eq!(div_ceil(-7, 2), -3);
        assert_eq!(volume_rate_nl_per_day(400_000, 2000), 200_000);
    }

    /// Both searches equal a scan for the first `t` reaching the target, on curves like a
    /// battery drain: linear, floors (strokes), periodic jumps (tones of two alarms).
    #[test]
    fn searches_equal_a_scan() {
        let curves: Vec<(i128, i128, i64, i128, i64, i64, i128)> = vec![
            // (slope, stroke jump, stroke every, tone jump, tone a every, tone b every, start)
            (8, 0, 1, 5_000, 600, 3_600, 0),
            (8, 200, 173, 5_000, 600, 3_600, 17),
            (0, 1, 1, 0, 1_000, 1_000, 0),
            (3, 7, 50, 1_000_000, 1_000, 1_700, 5),
            (1_000, 0, 1, 1, 1_000, 1_000, 0),
        ];
        for (slope, sj, se, tj, ta, tb, start) in curves {
            let tones = |t: i64| i128::from(t.div_euclid(ta) + (t - 7).div_euclid(tb));
            let f = |t: i64| {
                start + slope * i128::from(t) + sj * i128::from(t.div_euclid(se)) + tj * tones(t)
            };
            let next_jump =
                |t: i64| ((t.div_euclid(ta) + 1) * ta).min(((t - 7).div_euclid(tb) + 1) * tb + 7);
            let (lo, hi) = (3, 20_000);
            for target in (f(lo) + 1..=f(hi)).step_by(((f(hi) - f(lo)) / 97).max(1) as usize) {
                let want = (lo + 1..=hi).find(|&t| f(t) >= target).unwrap();
                assert_eq!(first_at_least(f, target, lo, hi), want, "target {target}");
                assert_eq!(
                    first_at_least_with_jumps(f, target, lo, hi, next_jump, ta.min(tb)),
                    want,
                    "target {target}"
                );
            }
        }
    }
}
