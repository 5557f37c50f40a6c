//! What a changing command did. A person reads a sentence on stderr (and the
//! id of anything new on stdout, for `$(casebook case new ...)`); a script
//! with `--json` reads one object: `action`, the `id` of what was made or
//! touched, and the ids of what it belongs to under their kinds' names
//! (`case`, `note`, `account`, `device`), never prose.

use crate::cli::term::{say, tell};
use anyhow::Result;
use serde_json::{Map, Value};

use super::{Out, print_json};

/// One change, built by [`Out::changed`].
#[must_use = "a change is reported by .done() or .created()"]
pub struct Changed {
    json: bool,
    id: String,
    fields: Map<String, Value>,
}

impl Out {
    /// A change named `action` ("note.signed": the kind of thing, then what
    /// happened to it) to the thing whose id is `id`.
    pub fn changed(&self, action: &str, id: impl ToString) -> Changed {
        let id = id.to_string();
        let mut fields = Map::new();
        fields.insert("action".into(), action.into());
        fields.insert("id".into(), id.clone().into());
        Changed {
            json: self.json,
            id,
            fields,
        }
    }
}

impl Changed {
    /// Adds the id (or a count, a path) of something the change belongs to.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Changed {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// Reports a change to something that existed: `message` for a person.
    pub fn done(self, message: &str) -> Result<()> {
        if self.json {
            return print_json(&Value::Object(self.fields));
        }
        tell!("{message}");
        Ok(())
    }

    /// Reports something new: its id alone on stdout for a person.
    pub fn created(self) -> Result<()> {
        if self.json {
            return print_json(&Value::Object(self.fields));
        }
        say!("{}", self.id);
        Ok(())
    }
}
