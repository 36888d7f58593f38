//! Authentication context class references (RFC 9470 `acr_values`): what one may hold.
//!
//! Below the policy and the client rules alike: the policy compiler checks the values it
//! is given with it, and the browser package checks what an app passes.

/// Is `value` a valid authentication context class reference (RFC 9470 `acr_values`)? It is
/// sent space-separated in a quoted-string, so it is printable ASCII without space, `"` and
/// `\`, and not empty.
///
/// ```
/// use scopegate_core::client::is_valid_acr;
/// assert!(is_valid_acr("urn:mace:incommon:iap:silver"));
/// assert!(!is_valid_acr("two words"));
/// assert!(!is_valid_acr("say\"hi\""));
/// assert!(!is_valid_acr(""));
/// ```
pub fn is_valid_acr(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\')
}
