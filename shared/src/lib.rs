//! What the casebook relay and client must agree on, byte for byte: identifiers,
//! the crypto steps, the signed account and document-access logs, the change
//! envelope, and the wire frames with their codec.
//!
//! No I/O, no async, no SQLite: both sides link this crate, and the relay must
//! stay unable to parse a note, so nothing here knows about Automerge.

pub mod access;
pub mod account;
pub mod clock;
pub mod codec;
pub mod crypto;
pub mod envelope;
pub mod fingerprint;
pub mod frames;
pub mod ids;
pub mod role;
pub mod signed;

/// The ALPN protocol id; bump the suffix on an incompatible wire change.
/// 2: signals (a third envelope kind) and claims in the audit body, which
/// a build of 1 refuses (it would stop at the first, every sync): it is
/// told at the handshake instead. 3: a listing carries each access log's
/// last entry hash ([`frames::DocHead::access_head`]). 4: an early upload
/// names each document's access log end ([`frames::Request::UploadLatest`]).
pub const ALPN: &[u8] = b"casebook/4";

/// The wire and envelope format version this build speaks.
pub const PROTOCOL_VERSION: u8 = 1;
