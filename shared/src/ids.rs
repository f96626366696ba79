//! Identifiers and secrets. Ids sort by creation time (48 bits of milliseconds, then 80
//! random bits, in Crockford base32), so listing by id is listing by age.

use std::sync::Mutex;

use rand::RngCore;

use crate::clock::Millis;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// The last id value issued by this process, so ids minted in one millisecond still sort
/// in the order they were minted.
static LAST: Mutex<u128> = Mutex::new(0);

/// A new id `prefix_` + 26 characters, time-ordered (monotonic within a process).
pub fn new_id(prefix: &str, now: Millis) -> String {
    let mut random = [0u8; 10];
    rand::rng().fill_bytes(&mut random);
    let mut value: u128 = u128::from(now.max(0) as u64 & 0xFFFF_FFFF_FFFF) << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    if let Ok(mut last) = LAST.lock() {
        if value >> 80 == *last >> 80 && value <= *last {
            value = *last + 1;
        }
        *last = value;
    }
    let mut out = String::with_capacity(prefix.len() + 27);
    out.push_str(prefix);
    out.push('_');
    for i in (0..26).rev() {
        let idx = ((value >> (5 * i)) & 0x1F) as usize;
        out.push(char::from(CROCKFORD[idx]));
    }
    out
}

/// When an id we issued was made (its first 48 bits), if it has our shape.
pub fn time_of(prefix: &str, id: &str) -> Option<Millis> {
    if !is_id(prefix, id) {
        return None;
    }
    let digits = &id[prefix.len() + 1..];
    let mut value: u128 = 0;
    for b in digits.bytes() {
        let digit = CROCKFORD.iter().position(|c| *c == b)? as u128;
        value = (value << 5) | digit;
    }
    Millis::try_from(value >> 80).ok()
}

/// `n` random bytes from the OS-seeded CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A random token of `n` bytes, URL-safe base64 without padding.
pub fn random_token(n: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(n))
}

/// Whether `s` looks like an id we issue with this prefix (cheap shape check before a lookup).
pub fn is_id(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| CROCKFORD.contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_are_unique() {
        let a = new_id("wh", 1_000);
        let b = new_id("wh", 2_000);
        let c = new_id("wh", 2_000);
        assert!(a < b);
        assert_ne!(b, c);
        assert!(is_id("wh", &a));
        assert!(!is_id("ev", &a));
        assert!(!is_id("wh", "wh_../../etc"));
        assert_eq!(time_of("wh", &a), Some(1_000));
        assert_eq!(
            time_of("wh", &new_id("wh", 1_764_583_200_123)),
            Some(1_764_583_200_123)
        );
        assert_eq!(time_of("ev", &a), None);
        let burst: Vec<String> = (0..100).map(|_| new_id("wh", 3_000)).collect();
        assert!(burst.windows(2).all(|w| w[0] < w[1]));
    }
}
