//! Identifiers the way Rancher makes them: generated names, token secrets, uids, and small encoders.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// The alphabet Kubernetes `generateName` and wrangler's random tokens draw from.
pub const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Length of a token secret (wrangler `randomtoken.Generate`).
pub const SECRET_LEN: usize = 54;

/// `n` random characters from [`ALPHABET`].
pub(crate) fn rand_chars(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A generated name: `prefix` + 5 characters (e.g. `u-` -> `u-b7x2k`).
pub(crate) fn gen_name(rng: &mut ChaCha8Rng, prefix: &str) -> String {
    format!("{prefix}{}", rand_chars(rng, 5))
}

/// A 54-character token secret.
pub(crate) fn secret(rng: &mut ChaCha8Rng) -> String {
    rand_chars(rng, SECRET_LEN)
}

/// A random (v4-shaped) uid drawn from the seeded RNG.
pub(crate) fn uid(rng: &mut ChaCha8Rng) -> String {
    fmt_uid(&uid_bytes(rng))
}

/// The random part of a uid, as [`uid`] draws it (objects seeded in bulk keep these 16 bytes, not the text).
pub(crate) fn uid_bytes(rng: &mut ChaCha8Rng) -> [u8; 16] {
    rng.gen()
}

/// The uid text of [`uid_bytes`].
pub(crate) fn fmt_uid(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Hex sha256 of `text`.
pub(crate) fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The user id Rancher derives for an external principal: `u-` + 10 lowercase base32 chars of sha256.
pub(crate) fn user_id_for_principal(principal: &str) -> String {
    const B32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let digest = Sha256::digest(principal.as_bytes());
    let mut out = String::from("u-");
    let mut bits: u32 = 0;
    let mut nbits = 0;
    for byte in digest.iter() {
        bits = (bits << 8) | u32::from(*byte);
        nbits += 8;
        while nbits >= 5 && out.len() < 12 {
            nbits -= 5;
            out.push(B32[((bits >> nbits) & 31) as usize] as char);
        }
        if out.len() >= 12 {
            break;
        }
    }
    out
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Decodes standard or URL-safe base64 (padding optional). `None` on bad input.
pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut nbits = 0;
    for c in text.trim().bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((acc >> nbits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn names_use_the_rancher_alphabet() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = gen_name(&mut rng, "u-");
        assert_eq!(n.len(), 7);
        assert!(n[2..].bytes().all(|c| ALPHABET.contains(&c)));
        assert_eq!(secret(&mut rng).len(), 54);
    }

    #[test]
    fn base64_round_trip() {
        for s in ["", "a", "ab", "abc", "token-abcde:secret"] {
            assert_eq!(b64_decode(&b64_encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(b64_encode(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn principal_user_ids_are_deterministic() {
        let a = user_id_for_principal("openldap_user://uid=alice");
        assert_eq!(a, user_id_for_principal("openldap_user://uid=alice"));
        assert_eq!(a.len(), 12);
    }
}
