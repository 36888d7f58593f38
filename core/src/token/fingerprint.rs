//! How a token is found again: a 64-bit fingerprint of its last bytes (its signature, as
//! good as random for an issuer's tokens) and a comparison of its whole text in constant
//! time, for the gateway's token cache and the introspection answers. Only the very same
//! token text is ever taken for a kept one.

/// A token's fingerprint (see [`fingerprint`]).
pub(crate) type Fingerprint = u64;

/// FNV-1a of the last 16 bytes: 96 bits of a base64url signature, enough to spread the
/// issuer's tokens; equality of the whole token is checked on every hit anyway.
pub(crate) fn fingerprint(token: &str) -> Fingerprint {
    let bytes = token.as_bytes();
    bytes[bytes.len().saturating_sub(16)..]
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
            (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Compares every byte whatever the first difference, so that the time a lookup takes
/// does not tell how much of a cached token (one that shares the fingerprint) a guess got
/// right.
/// Eight bytes at a time: this runs over the whole token on every cache hit.
pub(crate) fn same_token(cached: &str, presented: &str) -> bool {
    let (cached, presented) = (cached.as_bytes(), presented.as_bytes());
    if cached.len() != presented.len() {
        return false;
    }
    let word = |bytes: &[u8]| u64::from_ne_bytes(bytes.try_into().unwrap_or_default());
    let (ours, theirs) = (cached.chunks_exact(8), presented.chunks_exact(8));
    let tails = ours.remainder().iter().zip(theirs.remainder());
    let words = ours
        .zip(theirs)
        .fold(0u64, |difference, (a, b)| difference | (word(a) ^ word(b)));
    let tail = tails.fold(0u8, |difference, (a, b)| difference | (a ^ b));
    words == 0 && tail == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_in_any_byte_is_found() {
        for len in 0..27 {
            let token: alloc::string::String = (0..len).map(|i| (b'a' + i as u8) as char).collect();
            assert!(same_token(&token, &token));
            for at in 0..len {
                let mut other = token.clone().into_bytes();
                other[at] ^= 0x01;
                let other = alloc::string::String::from_utf8(other).unwrap();
                assert!(!same_token(&token, &other), "{len} {at}");
            }
        }
    }
}
