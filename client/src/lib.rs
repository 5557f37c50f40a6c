//! The casebook client: an encrypted local store of case files and session
//! notes, merged across devices with Automerge and synced through a relay
//! that only ever holds ciphertext.

pub mod app;
pub mod audit;
mod audit_gaps;
pub mod audit_sync;
pub mod audit_view;
pub mod backup;
pub mod clock;
pub mod devices;
pub mod docs;
pub mod error;
pub mod export;
pub mod files;
pub mod home;
pub mod identity;
pub mod names;
pub mod net;
pub mod notes;
pub mod pairing;
pub mod rebase;
#[cfg(test)]
mod rebase_tests;
pub mod recovery;
pub mod session;
pub mod sharing;
pub mod store;
pub mod sync;

pub use error::{Error, Result};
pub use home::Home;
