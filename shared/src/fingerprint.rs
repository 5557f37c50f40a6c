//! The relay certificate's fingerprint as people copy it: `sha256:` and
//! lowercase hex. The relay prints it, a client pins it; both must read and
//! write it alike, so it is protocol.

/// `sha256:` and lowercase hex.
pub fn format(fp: &[u8; 32]) -> String {
    format!("sha256:{}", hex::encode(fp))
}

/// Parses `sha256:HEX` (the prefix is optional); `None` for anything else.
pub fn parse(s: &str) -> Option<[u8; 32]> {
    let h = s.trim().strip_prefix("sha256:").unwrap_or(s.trim());
    hex::decode(h).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_refuses_garbage() {
        let fp = [0xab; 32];
        let s = super::format(&fp);
        assert_eq!(s.len(), 7 + 64);
        assert_eq!(super::parse(&s), Some(fp));
        assert_eq!(super::parse(&s[7..]), Some(fp));
        for bad in ["", "sha256:", "sha256:zz", &s[..20]] {
            assert_eq!(super::parse(bad), None, "{bad}");
        }
    }
}
