//! The one encoding both sides use: postcard, with hard limits and no trailing bytes.
//!
//! Frames on a stream are a 4-byte big-endian length, then that many bytes of
//! postcard. A decoder refuses an oversized length before reading the body.

use serde::{Serialize, de::DeserializeOwned};

/// The largest frame either side accepts (a page of fetched envelopes fits).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// A decode failure: the bytes are not what they claim to be.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    #[error("malformed data: {0}")]
    Malformed(String),
    #[error("{0} bytes of trailing data")]
    Trailing(usize),
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("frame is truncated")]
    Truncated,
}

/// Encodes a value with postcard.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("postcard encodes every type of this crate into a Vec")
}

/// Decodes a value, refusing trailing bytes so one value has one encoding.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::Trailing(rest.len()));
    }
    Ok(value)
}

/// Encodes a value as a length-prefixed frame.
pub fn frame<T: Serialize>(value: &T) -> Vec<u8> {
    let body = encode(value);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads the length prefix of a frame, refusing one over the limit.
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, CodecError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(CodecError::TooLarge(len));
    }
    Ok(len)
}

/// Decodes one whole frame held in memory (prefix included).
pub fn unframe<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let prefix: [u8; 4] = bytes
        .get(..4)
        .and_then(|p| p.try_into().ok())
        .ok_or(CodecError::Truncated)?;
    let len = frame_len(prefix)?;
    let body = bytes.get(4..).ok_or(CodecError::Truncated)?;
    match body.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(CodecError::Truncated),
        std::cmp::Ordering::Greater => Err(CodecError::Trailing(body.len() - len)),
        std::cmp::Ordering::Equal => decode(body),
    }
}

/// `#[serde(with)]` for a list of byte strings (a request's envelopes):
/// each one is copied whole rather than visited byte by byte. Postcard
/// writes a byte string exactly as it writes a `Vec<u8>`, so the wire is
/// unchanged.
pub mod byte_strings {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_bytes::{ByteBuf, Bytes};

    pub fn serialize<S: Serializer>(items: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(items.iter().map(|b| Bytes::new(b)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let items: Vec<ByteBuf> = Vec::deserialize(d)?;
        Ok(items.into_iter().map(ByteBuf::into_vec).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Plain {
        items: Vec<Vec<u8>>,
        one: Vec<u8>,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Fast {
        #[serde(with = "byte_strings")]
        items: Vec<Vec<u8>>,
        #[serde(with = "serde_bytes")]
        one: Vec<u8>,
    }

    /// Byte strings change how fast a frame decodes, never its bytes: old
    /// and new peers read each other.
    #[test]
    fn byte_strings_keep_the_wire() {
        let items = vec![vec![], vec![7; 300], (0..=255).collect()];
        let one = vec![1, 2, 3];
        let plain = encode(&Plain {
            items: items.clone(),
            one: one.clone(),
        });
        let fast = Fast { items, one };
        assert_eq!(encode(&fast), plain);
        assert_eq!(decode::<Fast>(&plain).unwrap(), fast);
    }
}
