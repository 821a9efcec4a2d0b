//! A password as the users file of `WEB_BASIC_AUTH_FILE` stores it: in plain text, or as a
//! bcrypt hash the way `htpasswd -B` writes it (`$2y$05$` + 22 characters of salt + 31 of hash;
//! `$2b$` and `$2a$` too).
//!
//! Owns the hash's format ([`Hash::parse`]: bcrypt's own radix-64 alphabet, the cost and its
//! cap [`MAX_COST`]), checking a password against a stored one ([`Stored::matches`]), and the
//! constant-time comparison ([`equal`]). The `bcrypt` crate is used here only, for its raw
//! `bcrypt(cost, salt, key)` (the EksBlowfish rounds); everything around it is ours. Knows
//! nothing about files, users or HTTP: `files.rs` reads the file, `server.rs` the request.
//!
//! Checks cost the same whatever the outcome: a wrong password for a hashed user runs bcrypt
//! like a right one, the comparison never stops at the first difference, and [`Hash::dummy`]
//! lets a caller spend the same time on a user that does not exist.

use std::fmt;
use std::sync::{Mutex, PoisonError};

/// The highest cost accepted. Each step doubles the time of a check: cost 12 takes about a
/// quarter of a second on a small machine, so a hash of cost 31 would take days per request.
pub const MAX_COST: u32 = 12;
/// The lowest cost bcrypt defines.
const MIN_COST: u32 = 4;

/// bcrypt's radix-64 alphabet (not base64's: `.` and `/` first, then letters, then digits).
const ALPHABET: &[u8; 64] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A bcrypt hash, parsed. No `Debug`: it is a secret's hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Hash {
    pub cost: u32,
    salt: [u8; 16],
    /// The first 23 bytes of bcrypt's 24 (the string holds no more).
    digest: [u8; 23],
}

/// What a users file line stores for a user. No `Debug`: it holds a password or its hash.
#[derive(Clone, PartialEq, Eq)]
pub enum Stored {
    Plain(Vec<u8>),
    Bcrypt(Hash),
}

/// Why a hash cannot be used. The message never shows the hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashError {
    /// Not `$2a$`, `$2b$` or `$2y$`, two digits of cost, `$` and 53 radix-64 characters.
    Malformed,
    /// A cost outside what bcrypt defines, or above [`MAX_COST`].
    Cost(u32),
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashError::Malformed => f.write_str(
                "not a bcrypt hash ($2y$, two digits of cost, $, then 53 characters); \
                 write it with htpasswd -B",
            ),
            HashError::Cost(cost) if *cost < MIN_COST => {
                write!(f, "bcrypt cost {cost} is below {MIN_COST}, which bcrypt does not allow; hash the password again with htpasswd -B")
            }
            HashError::Cost(cost) => write!(
                f,
                "bcrypt cost {cost} is more than {MAX_COST}: each check would take {}x as long \
                 as at cost {MAX_COST}; hash the password again with htpasswd -B -C {MAX_COST} \
                 (or less)",
                1u64 << (cost - MAX_COST).min(40)
            ),
        }
    }
}

impl Hash {
    /// Whether `text` looks like a bcrypt hash at all (it starts `$2`): such a line is parsed
    /// as one, and an error is reported if it is not valid, rather than taking the hash for a
    /// plain-text password.
    pub fn looks_like(text: &[u8]) -> bool {
        text.starts_with(b"$2")
    }

    /// Parses `$2a$`/`$2b$`/`$2y$` + cost + `$` + 22 characters of salt + 31 of hash.
    pub fn parse(text: &[u8]) -> Result<Hash, HashError> {
        let malformed = Err(HashError::Malformed);
        if text.len() != 60 || text[0] != b'$' || text[3] != b'$' || text[6] != b'$' {
            return malformed;
        }
        if !matches!(&text[1..3], b"2a" | b"2b" | b"2y") {
            return malformed;
        }
        let (tens, ones) = (text[4], text[5]);
        if !tens.is_ascii_digit() || !ones.is_ascii_digit() {
            return malformed;
        }
        let cost = u32::from(tens - b'0') * 10 + u32::from(ones - b'0');
        let mut salt = [0u8; 16];
        let mut digest = [0u8; 23];
        if decode(&text[7..29], &mut salt).is_none() || decode(&text[29..], &mut digest).is_none() {
            return malformed;
        }
        if !(MIN_COST..=MAX_COST).contains(&cost) {
            return Err(HashError::Cost(cost));
        }
        Ok(Hash { cost, salt, digest })
    }

    /// A hash that no password matches, of the given cost: checking a password against it
    /// takes as long as against a real hash of that cost.
    pub fn dummy(cost: u32) -> Hash {
        Hash {
            cost: cost.clamp(MIN_COST, MAX_COST),
            salt: *b"status-exporter!",
            digest: [0; 23],
        }
    }

    /// Whether `password` hashes to this hash. Always runs bcrypt in full, and compares in
    /// constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        // bcrypt hashes the password with a closing NUL, cut at 72 bytes (as htpasswd does).
        let mut key = [0u8; 72];
        let n = password.len().min(72);
        key[..n].copy_from_slice(&password[..n]);
        let len = (n + 1).min(72);
        // One check at a time: a flood of wrong passwords takes one core, not all of them.
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let output = {
            let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
            // The cost is within MIN_COST..=MAX_COST and the key 1 to 72 bytes long, which is
            // all that the function asserts.
            bcrypt::bcrypt(self.cost, self.salt, &key[..len])
        };
        key.fill(0);
        #[cfg(test)]
        RUNS.with(|runs| runs.borrow_mut().push(self.cost));
        equal(&output[..23], &self.digest)
    }
}

#[cfg(test)]
thread_local! {
    /// The cost of each bcrypt run on this thread, so that tests can see what a check cost.
    pub static RUNS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Stored {
    /// Whether `password` is the stored one, in a time that depends only on the lengths (plain
    /// text) or the cost (bcrypt).
    pub fn matches(&self, password: &[u8]) -> bool {
        match self {
            Stored::Plain(stored) => equal(password, stored),
            Stored::Bcrypt(hash) => hash.verify(password),
        }
    }
}

/// Whether `a` equals `b`, comparing every byte of `a` without stopping at a difference: the
/// time depends only on the length of `a`, never on where the two differ.
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    if b.is_empty() {
        return a.is_empty();
    }
    let mut diff = u8::from(a.len() != b.len());
    for (i, byte) in a.iter().enumerate() {
        diff |= byte ^ b[i % b.len()];
    }
    std::hint::black_box(diff) == 0
}

/// Decodes exactly `out.len()` bytes of bcrypt radix-64 from `input`; None if a character is
/// not of the alphabet or the length does not fit. The bits left over in the last character
/// are ignored, as bcrypt does.
fn decode(input: &[u8], out: &mut [u8]) -> Option<()> {
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &c in input {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6 | v) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    (n == out.len()).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bcrypt radix-64, the other way: only the tests make hashes.
    fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            }
        }
        out
    }

    /// A `$2b$` hash of `password`, made here with the raw function, as htpasswd would.
    fn hash(password: &[u8], cost: u32, salt: [u8; 16]) -> String {
        let mut key = password.to_vec();
        key.push(0);
        key.truncate(72);
        let output = bcrypt::bcrypt(cost, salt, &key);
        format!("$2b${cost:02}${}{}", encode(&salt), encode(&output[..23]))
    }

    #[test]
    fn a_hash_made_in_rust_verifies() {
        let made = hash(b"s3cret", 4, *b"0123456789abcdef");
        assert_eq!(made.len(), 60, "{made}");
        let parsed = Hash::parse(made.as_bytes()).expect("parses");
        assert_eq!(parsed.cost, 4);
        assert!(parsed.verify(b"s3cret"));
        assert!(!parsed.verify(b"s3cret "));
        assert!(!parsed.verify(b""));
        // The $2y$ and $2a$ spellings hash the same way.
        for variant in ["$2y$", "$2a$"] {
            let other = format!("{variant}{}", &made[4..]);
            assert!(Hash::parse(other.as_bytes()).unwrap().verify(b"s3cret"));
        }
    }

    #[test]
    fn htpasswd_hashes_verify() {
        // `htpasswd -nbB -C 4 prometheus s3cret` and `htpasswd -nbB -C 5 u 'pässwörd:x'`.
        let check = |hash: &str, password: &[u8], expected: bool| {
            let parsed = Hash::parse(hash.as_bytes()).expect(hash);
            assert_eq!(parsed.verify(password), expected, "{hash} {password:?}");
        };
        let prometheus = "$2y$04$ZTFqrCsxTsuiNrGzgxVuK.WkoKsZ4vpcPy4DO4ipK3.3Y6KnlZKBO";
        check(prometheus, b"s3cret", true);
        check(prometheus, b"s3cre", false);
        check(prometheus, b"S3cret", false);
        let utf8 = "$2y$05$zBJaQoFsCkk1zzHf8p2MHes7FdfjoAdpaPUAuqoIBQHCMfXdCFPCW";
        check(utf8, "pässwörd:x".as_bytes(), true);
        check(utf8, b"passwort:x", false);
    }

    #[test]
    fn passwords_are_cut_at_72_bytes_as_htpasswd_does() {
        let long = [b'a'; 80];
        let made = hash(&long, 4, [7; 16]);
        let parsed = Hash::parse(made.as_bytes()).unwrap();
        assert!(parsed.verify(&long));
        assert!(parsed.verify(&long[..72]));
        assert!(!parsed.verify(&long[..71]));
        let exact = hash(&long[..71], 4, [7; 16]);
        let parsed = Hash::parse(exact.as_bytes()).unwrap();
        assert!(parsed.verify(&long[..71]));
        assert!(!parsed.verify(&long[..72]));
    }

    #[test]
    fn malformed_hashes_and_costs_are_refused() {
        let good = hash(b"x", 4, [1; 16]);
        let check = |text: &str, expected: HashError| {
            assert_eq!(Hash::parse(text.as_bytes()).err(), Some(expected), "{text}");
        };
        check("$2y$04$", HashError::Malformed);
        check(&format!("{good}x"), HashError::Malformed);
        check(&good.replace("$2b$", "$2x$"), HashError::Malformed);
        check(&good.replace("$2b$", "$1b$"), HashError::Malformed);
        check(&good.replace("$04$", "$4a$"), HashError::Malformed);
        check(
            &format!("{}!{}", &good[..7], &good[8..]),
            HashError::Malformed,
        );
        check(&good.replace("$04$", "$13$"), HashError::Cost(13));
        check(&good.replace("$04$", "$31$"), HashError::Cost(31));
        check(&good.replace("$04$", "$99$"), HashError::Cost(99));
        check(&good.replace("$04$", "$03$"), HashError::Cost(3));
        assert!(HashError::Cost(31)
            .to_string()
            .contains("htpasswd -B -C 12"));
        assert!(Hash::parse(good.replace("$04$", "$12$").as_bytes()).is_ok());
    }

    #[test]
    fn the_dummy_matches_nothing_and_costs_what_it_is_told() {
        let dummy = Hash::dummy(5);
        assert_eq!(dummy.cost, 5);
        assert!(!dummy.verify(b""));
        assert!(!dummy.verify(b"status-exporter!"));
        assert_eq!(Hash::dummy(40).cost, MAX_COST);
        assert_eq!(Hash::dummy(0).cost, MIN_COST);
    }

    #[test]
    fn comparison() {
        fn check(a: &str, b: &str, expected: bool) {
            assert_eq!(equal(a.as_bytes(), b.as_bytes()), expected, "{a:?} {b:?}");
            let stored = Stored::Plain(b.as_bytes().to_vec());
            assert_eq!(stored.matches(a.as_bytes()), expected, "{a:?} {b:?}");
        }
        check("s3cret", "s3cret", true);
        check("s3cret", "s3cres", false);
        check("s3cre", "s3cret", false);
        check("s3crets", "s3cret", false);
        check("", "", true);
        check("", "x", false);
        check("x", "", false);
        // The repetition of a short stored value is not a match (the comparison wraps around).
        check("abab", "ab", false);
    }
}
