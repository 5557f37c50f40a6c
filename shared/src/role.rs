//! A member's role on a document, as access logs carry it and people
//! type and read it.

use serde::{Deserialize, Serialize};

/// What a member may do with a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Read,
    Comment,
    Write,
    Owner,
}

impl Role {
    /// The role's word, as people type and read it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Comment => "comment",
            Role::Write => "write",
            Role::Owner => "owner",
        }
    }

    /// Whether a member of this role may upload changes.
    pub fn can_upload(self) -> bool {
        self >= Role::Comment
    }
}
