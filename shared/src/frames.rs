//! The wire frames, all in one place.
//!
//! Every request travels on its own bidirectional QUIC stream: the client
//! writes one [`Request`] frame and finishes its side; the relay answers with
//! one [`Response`] frame (or, for [`Request::Subscribe`], a frame each time a
//! document changes). Frames are length-prefixed postcard ([`crate::codec`]).

use serde::{Deserialize, Serialize};

use crate::crypto::Sig;
use crate::ids::{AccountId, DeviceId, DocId, Hash};
use crate::signed::Signed;

/// Signature label of the authentication answer.
pub const AUTH_LABEL: &str = "casebook/v1/sig/auth";
/// Most envelopes one upload may carry.
pub const MAX_UPLOAD: usize = 1024;
/// Largest pairing-mailbox message.
pub const MAX_MAILBOX_MSG: usize = 8 * 1024;

/// The bytes a device signs to prove itself to one relay on one connection.
/// `account` is `None` when the device asks the relay which account lists it
/// (a recovery key's paper device knows only its own keys).
pub fn auth_message(
    relay_fingerprint: &[u8; 32],
    nonce: &[u8; 32],
    account: Option<&AccountId>,
    device: &DeviceId,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(relay_fingerprint);
    m.extend_from_slice(nonce);
    m.extend_from_slice(&account.map_or([0; 32], |a| a.0));
    m.extend_from_slice(&device.0);
    m
}

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Asks for a fresh nonce to sign.
    Challenge,
    /// Proves the connection belongs to an active device of an account.
    Auth {
        account: Option<AccountId>,
        device: DeviceId,
        sig: Sig,
    },
    /// Registers a new account from its log (unauthenticated: the log proves
    /// itself); for an account the relay holds, takes the entries it lacks
    /// when its log is where this one begins (a relay restored from an
    /// older copy, sent back by any device that holds the log).
    CreateAccount { entries: Vec<Signed> },
    /// Appends entries to the caller's account log.
    AppendAccount { entries: Vec<Signed> },
    /// Reads an account log from entry `from` on.
    GetAccount { account: AccountId, from: u64 },
    /// Appends entries to a document's access log (genesis creates the document).
    AppendAccess { doc: DocId, entries: Vec<Signed> },
    /// Reads a document's access log from entry `from` on.
    GetAccess { doc: DocId, from: u64 },
    /// Lists every document the caller's account may read, with its heads.
    /// `since` is the highest sequence number the client has seen anywhere;
    /// the relay answers with all documents regardless (access-log changes
    /// carry no sequence number) and its own cursor.
    ListDocs { since: u64 },
    /// Stores envelopes; each answer says its sequence number or why not.
    /// Each must be sealed under its document's newest epoch (one sealed
    /// under an earlier one is refused [`ErrorCode::AccessMoved`]): a
    /// member removed since holds the earlier keys.
    Upload {
        #[serde(with = "crate::codec::byte_strings")]
        envelopes: Vec<Vec<u8>>,
    },
    /// Fetches envelopes of documents after the given sequence numbers, up to
    /// about `max_bytes`. When a document's latest snapshot covers more than
    /// asked for, it comes first: the relay keeps no change a snapshot covers.
    Fetch {
        docs: Vec<(DocId, u64)>,
        max_bytes: u32,
    },
    /// Keeps the stream open; the relay writes a [`Response::Notify`] per change.
    Subscribe,
    /// Puts one message into a pairing mailbox slot (each slot takes one).
    MailboxPut {
        mailbox: [u8; 16],
        slot: u8,
        #[serde(with = "serde_bytes")]
        msg: Vec<u8>,
    },
    /// Takes the message of a slot, waiting up to `wait_ms` for it.
    MailboxTake {
        mailbox: [u8; 16],
        slot: u8,
        wait_ms: u32,
    },
    /// As [`Request::Upload`], and refused [`ErrorCode::AccessMoved`] too
    /// while the document owes a rotation (a member's share expired, or a
    /// member's account key is newer than the newest epoch was sealed to).
    /// A device sends what it queued this way before it has caught up on
    /// access changes, so an edit reaches other devices at once without
    /// ever going out under a key that a member removed since holds.
    UploadLatest {
        #[serde(with = "crate::codec::byte_strings")]
        envelopes: Vec<Vec<u8>>,
        /// For each document, the last entry of its access log as the
        /// device holds it: an envelope is taken only where the relay's
        /// log ends there too. Two of the owner's devices can each move a
        /// document to a new key for one revocation, and a restore can
        /// lose the one the relay took; the epoch's number alone does not
        /// tell the two keys apart, and an edit sealed under the lost one
        /// would stay on the relay, opened by no device.
        heads: Vec<(DocId, Hash)>,
    },
    /// As [`Request::Subscribe`], and a change whose envelope is at most
    /// `max_bytes` long comes with it ([`Response::Pushed`]), so a watching
    /// device need not ask for it. A relay that does not know this request
    /// answers [`ErrorCode::BadRequest`]; the device then subscribes plainly.
    SubscribeItems { max_bytes: u32 },
    /// Gives back a document's disposal that the relay lost (restored from
    /// an older copy, or losing data): the owner's signed `Dispose` entry
    /// alone, which proves itself, sent by any device that holds it. The
    /// relay deletes what it holds of the document, as in any disposal,
    /// and answers [`Response::Log`] with the disposal it keeps (another
    /// one, if it held one already). `readers`, the accounts that could
    /// read the document as the sender knew it, are told of the disposal
    /// too; they count only from the owner's own devices.
    RestoreDisposal {
        doc: DocId,
        entry: Signed,
        readers: Vec<AccountId>,
    },
}

/// A document's position as the relay holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocHead {
    pub doc: DocId,
    /// Entries in its access log.
    pub access_len: u64,
    /// The chain hash of the last of them: a device that holds as many
    /// entries sees whether they are the same ones (a relay restored from
    /// an older copy may hold another device's entries in their place).
    pub access_head: Hash,
    /// Highest sequence number of its envelopes (0 if none).
    pub seq: u64,
}

/// An envelope as stored, with its relay sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub doc: DocId,
    pub seq: u64,
    #[serde(with = "serde_bytes")]
    pub envelope: Vec<u8>,
}

/// Why the relay refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The frame did not decode or broke a limit.
    BadRequest,
    /// Not authenticated, or the device is unknown or revoked.
    Unauthorized,
    /// Authenticated but not allowed (not a member, read-only, expired).
    Forbidden,
    /// The named account, document or mailbox does not exist.
    NotFound,
    /// A signed log entry or envelope failed verification.
    Invalid,
    /// The request conflicts with stored state (log moved on, slot taken).
    Conflict,
    /// A per-connection or per-account limit was reached; try later.
    Limited,
    /// The relay failed; nothing was stored.
    Internal,
    /// The document's access log moved on (a new epoch) since the device
    /// last read it; nothing was stored. Catch up, seal again, resend.
    AccessMoved,
}

/// What the relay answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Ok,
    /// Authentication succeeded for this account.
    Authenticated {
        account: AccountId,
    },
    Challenge {
        nonce: [u8; 32],
    },
    Log {
        entries: Vec<Signed>,
    },
    Docs {
        docs: Vec<DocHead>,
        /// The highest sequence number the relay has assigned so far.
        cursor: u64,
    },
    /// One answer per uploaded envelope, in order.
    Uploaded {
        results: Vec<Result<u64, ErrorCode>>,
    },
    Changes {
        items: Vec<Stored>,
        /// More remained past the byte budget.
        more: bool,
    },
    Notify {
        doc: DocId,
        seq: u64,
    },
    Mailbox {
        #[serde(with = "serde_bytes")]
        msg: Option<Vec<u8>>,
    },
    Error {
        code: ErrorCode,
        reason: String,
    },
    /// A change pushed with its envelope (see [`Request::SubscribeItems`]).
    /// `prev` is the highest sequence number of the document's envelopes
    /// stored before it (0 if none): a device that has seen exactly `prev`
    /// of the document misses nothing by taking this one next.
    Pushed {
        item: Stored,
        prev: u64,
    },
}

impl Response {
    /// An error frame with a reason a person can act on.
    pub fn error(code: ErrorCode, reason: impl Into<String>) -> Self {
        Response::Error {
            code,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let reqs = vec![
            Request::Challenge,
            Request::ListDocs { since: 7 },
            Request::Upload {
                envelopes: vec![vec![1, 2, 3]],
            },
            Request::UploadLatest {
                envelopes: vec![vec![4, 5]],
                heads: vec![(DocId([7; 16]), crate::ids::Hash([8; 32]))],
            },
            Request::Fetch {
                docs: vec![(DocId([9; 16]), 3)],
                max_bytes: 10,
            },
            Request::SubscribeItems { max_bytes: 4096 },
        ];
        for r in reqs {
            let f = codec::frame(&r);
            assert_eq!(codec::unframe::<Request>(&f).unwrap(), r);
        }
    }

    #[test]
    fn snapshot_of_a_frame() {
        // Checked-in bytes: a change here is a wire-format change.
        let f = codec::frame(&Request::ListDocs { since: 300 });
        assert_eq!(hex::encode(f), "0000000307ac02");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = codec::unframe::<Request>(&bytes);
            let _ = codec::decode::<Response>(&bytes);
        }
    }
}
