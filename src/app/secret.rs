//! Unguessable names for what autoheal is about to create (an image's name, a launch's
//! `ClientToken`): recorded in the ledger before the call, never reported, so nobody can
//! create the thing first and have it adopted as autoheal's.

/// 128 bits from the operating system's randomness, as 32 lowercase hex digits.
pub fn token() -> String {
    let mut bytes = [0u8; 16];
    // No randomness from the OS means no secret worth the name: a hard stop, not a weak one.
    getrandom::getrandom(&mut bytes).expect("the operating system's randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_32_hex_digits_and_differ() {
        let (a, b) = (super::token(), super::token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
