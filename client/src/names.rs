//! Names people give (a practitioner's, a contact's, a client's): shown on
//! every device that shares a case, so they may not hold characters that
//! act on a terminal or reorder text (see the CLI's `term` module, which
//! escapes such characters in everything else it prints).

/// Whether `s` holds a control character or a bidirectional override.
pub fn has_controls(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
}

/// `name`, trimmed, if it is one a person can be shown.
pub fn check(name: &str) -> crate::Result<&str> {
    let name = name.trim();
    if has_controls(name) {
        return Err(crate::Error::BadName(name.escape_debug().to_string()));
    }
    Ok(name)
}
