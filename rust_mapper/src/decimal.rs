//! Exact decimal: an i128 coefficient (at most 38 digits) and a scale 0..=38. No floats anywhere.

use std::cmp::Ordering;

/// Largest allowed coefficient magnitude (38 nines).
pub const MAX_COEF: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;
/// Largest allowed scale.
pub const MAX_SCALE: u32 = 38;

/// How to round when a result has more fraction digits than the target scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    HalfEven,
    HalfUp,
    HalfDown,
    Down,
    Up,
    Floor,
    Ceiling,
}

impl Rounding {
    /// Parse a rounding mode name as used in specs.
    pub fn parse(name: &str) -> Option<Rounding> {
        Some(match name {
            "half_even" => Rounding::HalfEven,
            "half_up" => Rounding::HalfUp,
            "half_down" => Rounding::HalfDown,
            "down" => Rounding::Down,
            "up" => Rounding::Up,
            "floor" => Rounding::Floor,
            "ceiling" => Rounding::Ceiling,
            _ => return None,
        })
    }
}

/// An exact decimal number `coef * 10^-scale`. The coefficient is stored as two 64-bit halves so the type
/// has 8-byte alignment: it keeps `Value` at 32 bytes instead of 48 (i128 would force 16-byte alignment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    lo: u64,
    hi: i64,
    scale: u32,
}

/// Arithmetic left the supported range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange;

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Decimal {
    /// Build from parts, checking the range.
    pub fn new(coef: i128, scale: u32) -> Result<Decimal, OutOfRange> {
        if scale > MAX_SCALE || !(-MAX_COEF..=MAX_COEF).contains(&coef) {
            return Err(OutOfRange);
        }
        Ok(Decimal::raw(coef, scale))
    }

    #[inline]
    fn raw(coef: i128, scale: u32) -> Decimal {
        Decimal { lo: coef as u64, hi: (coef >> 64) as i64, scale }
    }

    /// An integer as a decimal of scale 0.
    pub fn from_i64(v: i64) -> Decimal {
        Decimal::raw(v as i128, 0)
    }

    #[inline]
    pub fn coef(&self) -> i128 {
        ((self.hi as i128) << 64) | self.lo as i128
    }

    pub fn scale(&self) -> u32 {
        self.scale
    }

    pub fn is_zero(&self) -> bool {
        self.coef() == 0
    }

    /// The common case in one tight loop: `[+-]?digits[.digits]` with at most 18 digits (money, quantities).
    /// `None` means "not this shape": the general parser decides.
    #[inline]
    fn parse_short(b: &[u8]) -> Option<Decimal> {
        let (neg, rest) = match b.first()? {
            b'-' => (true, &b[1..]),
            b'+' => (false, &b[1..]),
            _ => (false, b),
        };
        if rest.len() > 19 {
            return None;
        }
        let (mut v, mut digits, mut frac, mut dot) = (0u64, 0u32, 0u32, false);
        for &c in rest {
            if c.is_ascii_digit() {
                v = v * 10 + u64::from(c - b'0');
                digits += 1;
                frac += u32::from(dot);
            } else if c == b'.' && !dot {
                dot = true;
            } else {
                return None;
            }
        }
        if digits == 0 || digits > 18 {
            return None;
        }
        let coef = i128::from(v);
        Some(Decimal::raw(if neg { -coef } else { coef }, frac))
    }

    /// Parse `[+-]?(digits[.digits]|.digits)([eE][+-]?digits)?`. `None` for anything else; `Some(Err)` when
    /// well formed but out of range.
    pub fn parse(text: &str) -> Option<Result<Decimal, OutOfRange>> {
        let b = text.as_bytes();
        if let Some(d) = Decimal::parse_short(b) {
            return Some(Ok(d));
        }
        let mut i = 0;
        let neg = match b.first() {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let mut coef: i128 = 0;
        let mut overflow = false;
        let mut digits = 0usize;
        let mut frac: i64 = 0;
        let mut seen_dot = false;
        // Accumulate in u64 while it cannot overflow (18 digits), then in i128.
        let mut small: u64 = 0;
        let mut small_digits = 0usize;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_digit() {
                digits += 1;
                if seen_dot {
                    frac += 1;
                }
                if small_digits < 18 && coef == 0 {
                    small = small * 10 + u64::from(c - b'0');
                    if small != 0 {
                        small_digits += 1;
                    }
                } else {
                    if coef == 0 {
                        coef = i128::from(small);
                        small = 0;
                        small_digits = 18;
                    }
                    match coef.checked_mul(10).and_then(|v| v.checked_add((c - b'0') as i128)) {
                        Some(v) if v <= MAX_COEF => coef = v,
                        _ => overflow = true,
                    }
                }
            } else if c == b'.' && !seen_dot {
                seen_dot = true;
            } else {
                break;
            }
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        let mut exp: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let eneg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if exp < 100_000 {
                    exp = exp * 10 + (b[i] - b'0') as i64;
                }
                i += 1;
            }
            if i == start {
                return None;
            }
            if eneg {
                exp = -exp;
            }
        }
        if i != b.len() {
            return None;
        }
        if overflow {
            return Some(Err(OutOfRange));
        }
        if coef == 0 {
            coef = i128::from(small);
        }
        let coef = if neg { -coef } else { coef };
        let shift = exp - frac;
        if shift <= 0 {
            let scale = -shift;
            if scale > MAX_SCALE as i64 {
                return Some(Err(OutOfRange));
            }
            Some(Decimal::new(coef, scale as u32))
        } else {
            if shift > MAX_SCALE as i64 {
                return Some(if coef == 0 { Ok(Decimal::raw(0, 0)) } else { Err(OutOfRange) });
            }
            let m = match pow10(shift as u32).and_then(|p| coef.checked_mul(p)) {
                Some(m) => m,
                None => return Some(Err(OutOfRange)),
            };
            Some(Decimal::new(m, 0))
        }
    }

    /// Write in plain notation (never exponent), keeping the scale: `1.50`, `-0.30`, `12`.
    pub fn write_to(&self, out: &mut String) {
        let mut buf = [0u8; 40];
        let digits = digits_of(self.coef().unsigned_abs(), &mut buf);
        if self.coef() < 0 {
            out.push('-');
        }
        // Only ASCII digits: the conversion is a cheap check, not a fallible decode.
        let digits = std::str::from_utf8(digits).unwrap_or_default();
        let scale = self.scale as usize;
        if scale == 0 {
            out.push_str(digits);
        } else if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        } else {
            out.push_str("0.");
            for _ in 0..scale - digits.len() {
                out.push('0');
            }
            out.push_str(digits);
        }
    }

    /// Append plain notation to a byte buffer without allocating.
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; 40];
        let digits = digits_of(self.coef().unsigned_abs(), &mut buf);
        if self.coef() < 0 {
            out.push(b'-');
        }
        let scale = self.scale as usize;
        if scale == 0 {
            out.extend_from_slice(digits);
        } else if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            out.extend_from_slice(int);
            out.push(b'.');
            out.extend_from_slice(frac);
        } else {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat(b'0').take(scale - digits.len()));
            out.extend_from_slice(digits);
        }
    }

    /// Plain-notation string.
    pub fn to_plain(&self) -> String {
        // Sign, up to 39 digits, point and leading zeros: one allocation instead of growing while writing.
        let mut s = String::with_capacity(48);
        self.write_to(&mut s);
        s
    }

    /// Coefficient at a larger scale, `None` on i128 overflow.
    fn aligned(&self, scale: u32) -> Option<i128> {
        pow10(scale - self.scale).and_then(|p| self.coef().checked_mul(p))
    }

    pub fn add(&self, other: &Decimal) -> Result<Decimal, OutOfRange> {
        let scale = self.scale.max(other.scale);
        let a = self.aligned(scale).ok_or(OutOfRange)?;
        let b = other.aligned(scale).ok_or(OutOfRange)?;
        Decimal::new(a.checked_add(b).ok_or(OutOfRange)?, scale)
    }

    pub fn sub(&self, other: &Decimal) -> Result<Decimal, OutOfRange> {
        self.add(&other.neg())
    }

    pub fn mul(&self, other: &Decimal) -> Result<Decimal, OutOfRange> {
        let c = self.coef().checked_mul(other.coef()).ok_or(OutOfRange)?;
        Decimal::new(c, self.scale + other.scale)
    }

    pub fn neg(&self) -> Decimal {
        Decimal::raw(-self.coef(), self.scale)
    }

    pub fn abs(&self) -> Decimal {
        Decimal::raw(self.coef().abs(), self.scale)
    }

    /// `self / other` rounded to `scale`. `None` for division by zero.
    pub fn div(&self, other: &Decimal, scale: u32, mode: Rounding) -> Option<Result<Decimal, OutOfRange>> {
        if other.coef() == 0 {
            return None;
        }
        let k = scale as i64 + other.scale as i64 - self.scale as i64;
        let (n, d) = if k >= 0 {
            match pow10(k as u32).and_then(|p| self.coef().checked_mul(p)) {
                Some(n) => (n, other.coef()),
                None => return Some(Err(OutOfRange)),
            }
        } else {
            match pow10((-k) as u32).and_then(|p| other.coef().checked_mul(p)) {
                Some(d) => (self.coef(), d),
                None => return Some(Err(OutOfRange)),
            }
        };
        Some(Decimal::new(round_div(n, d, mode), scale))
    }

    /// The same value at exactly `scale` fraction digits, rounding when digits are dropped.
    pub fn rescale(&self, scale: u32, mode: Rounding) -> Result<Decimal, OutOfRange> {
        if scale > MAX_SCALE {
            return Err(OutOfRange);
        }
        if scale >= self.scale {
            Decimal::new(self.aligned(scale).ok_or(OutOfRange)?, scale)
        } else {
            let p = pow10(self.scale - scale).ok_or(OutOfRange)?;
            Decimal::new(round_div(self.coef(), p, mode), scale)
        }
    }

    /// Integer value when the decimal has no fractional part and fits i64.
    pub fn to_i64_exact(&self) -> Option<i64> {
        let p = pow10(self.scale)?;
        if self.coef() % p != 0 {
            return None;
        }
        i64::try_from(self.coef() / p).ok()
    }

    /// Numeric comparison (scales may differ).
    pub fn cmp_value(&self, other: &Decimal) -> Ordering {
        let scale = self.scale.max(other.scale);
        match (self.aligned(scale), other.aligned(scale)) {
            (Some(a), Some(b)) => a.cmp(&b),
            // The side that overflowed is larger in magnitude than any in-range coefficient.
            (None, _) => {
                if self.coef() < 0 {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (_, None) => {
                if other.coef() < 0 {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
        }
    }
}

/// `n / d` rounded to an integer with `mode` (d != 0).
pub fn round_div(n: i128, d: i128, mode: Rounding) -> i128 {
    let q = n / d;
    let r = n % d;
    if r == 0 {
        return q;
    }
    let positive = (n < 0) == (d < 0);
    let step = if positive { 1 } else { -1 };
    let ar = r.unsigned_abs();
    let ad = d.unsigned_abs();
    let rest = ad - ar;
    let away = match mode {
        Rounding::Down => false,
        Rounding::Up => true,
        Rounding::Floor => !positive,
        Rounding::Ceiling => positive,
        Rounding::HalfUp => ar >= rest,
        Rounding::HalfDown => ar > rest,
        Rounding::HalfEven => ar > rest || (ar == rest && q % 2 != 0),
    };
    if away {
        q + step
    } else {
        q
    }
}

/// Decimal digits of `n` at the end of `buf` (no sign). Values that fit in 64 bits (nearly all money) avoid
/// 128-bit division, which is a slow library call.
pub fn digits_of(n: u128, buf: &mut [u8; 40]) -> &[u8] {
    let mut i = buf.len();
    if let Ok(mut m) = u64::try_from(n) {
        loop {
            i -= 1;
            buf[i] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                break;
            }
        }
    } else {
        let mut m = n;
        loop {
            i -= 1;
            buf[i] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                break;
            }
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap().unwrap()
    }

    #[test]
    fn exact_sum() {
        assert_eq!(d("0.10").add(&d("0.20")).unwrap().to_plain(), "0.30");
        assert_eq!(d("1.5e3").to_plain(), "1500");
        assert_eq!(d("1.50e-1").to_plain(), "0.150");
        assert_eq!(d("-0.00").to_plain(), "0.00");
    }

    #[test]
    fn digits_on_both_sides_of_the_u64_fast_path() {
        for text in ["0", "7", "18446744073709551615", "18446744073709551616", "-99999999999999999999999.99", "0.001"] {
            let v = d(text);
            assert_eq!(v.to_plain(), text);
            let mut out = Vec::new();
            v.write_bytes(&mut out);
            assert_eq!(out, text.as_bytes());
        }
        let mut buf = [0u8; 40];
        assert_eq!(digits_of(u128::from(u64::MAX) + 1, &mut buf), b"18446744073709551616");
    }

    #[test]
    fn rounding_modes() {
        let cases = [
            ("2.5", Rounding::HalfEven, "2"),
            ("3.5", Rounding::HalfEven, "4"),
            ("-2.5", Rounding::HalfEven, "-2"),
            ("2.5", Rounding::HalfUp, "3"),
            ("-2.5", Rounding::HalfUp, "-3"),
            ("2.5", Rounding::HalfDown, "2"),
            ("2.1", Rounding::Up, "3"),
            ("-2.1", Rounding::Floor, "-3"),
            ("-2.9", Rounding::Ceiling, "-2"),
            ("-2.9", Rounding::Down, "-2"),
        ];
        for (input, mode, want) in cases {
            assert_eq!(d(input).rescale(0, mode).unwrap().to_plain(), want, "{input} {mode:?}");
        }
        assert_eq!(d("1").div(&d("3"), 4, Rounding::HalfEven).unwrap().unwrap().to_plain(), "0.3333");
        assert!(d("1").div(&d("0"), 2, Rounding::HalfEven).is_none());
    }

    #[test]
    fn range() {
        assert!(Decimal::parse("1e38").unwrap().is_err());
        assert!(Decimal::parse("0.1e-38").unwrap().is_err());
        assert!(Decimal::parse("abc").is_none());
        assert!(Decimal::parse("1.").is_some());
        assert!(Decimal::parse(".").is_none());
        assert!(Decimal::parse("1e").is_none());
    }
}
