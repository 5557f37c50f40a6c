//! The operations a person performs, once, for every front end.
//!
//! Each operation reads the clock, checks what may be done, does it, and
//! records its own audit entry, in the words the trail shows. The CLI (and
//! the web page after it) parse input, call one operation and render what
//! it returns; they hold no rule of their own and write no audit line.

mod cases;
pub(crate) mod disposal;

pub use disposal::KeptCase;
mod drafts;
mod held;

pub use drafts::{Draft, Drafts};
pub use held::HeldError;
mod notes;

pub use notes::{CaseListed, CaseView};
mod relay;
pub mod retention;
mod status;

pub use status::{EndingShare, Status};
mod signers;
