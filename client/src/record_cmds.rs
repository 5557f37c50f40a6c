//! The record's commands as clap reads them: `case`, `note` and `private`.

use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub(crate) enum CaseCmd {
    /// Open a new case file; prints its id.
    New {
        /// The client's name.
        name: String,
    },
    /// The open cases on this device.
    List {
        /// Closed cases too.
        #[arg(long)]
        all: bool,
    },
    /// Close (archive) a case: kept and synced, left out of lists.
    Close { case: String },
    /// Open a closed case again.
    Reopen { case: String },
    /// Keep this case for a period of its own after its last session (or,
    /// with --account-default, for the account's period again).
    Retention {
        case: String,
        /// Years after the last session.
        #[arg(
            long,
            conflicts_with = "account_default",
            required_unless_present = "account_default"
        )]
        years: Option<u32>,
        /// Go back to the account's period.
        #[arg(long)]
        account_default: bool,
    },
    /// Place a case under a legal hold: never disposed of, whatever its
    /// retention period says, until released.
    Hold {
        case: String,
        /// Why (a subpoena, a complaint, a request to keep it).
        #[arg(long)]
        reason: String,
    },
    /// Lift a case's legal hold.
    Release { case: String },
    /// Dispose of a case whose retention has run out: it is destroyed on
    /// every device, the relay and a colleague's, with every key that
    /// opened it. Asks you to type the client's name (or give --yes).
    Dispose {
        case: String,
        /// Before its retention period has run out.
        #[arg(long)]
        now: bool,
        /// Do not ask (for scripts).
        #[arg(long)]
        yes: bool,
    },
    /// A case's profile and notes (CASE: a unique part of its id or its client's name).
    Show { case: String },
    /// Each outcome measure's scores over a case's sessions (PHQ-9, GAD-7, ...).
    Scores { case: String },
    /// Set a case's profile fields (presenting_concerns, treatment_plan, goals) or name.
    Edit {
        case: String,
        /// FIELD=VALUE; repeat for several.
        #[arg(long = "field", value_name = "FIELD=VALUE")]
        fields: Vec<String>,
        /// Rename the case.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Args, Debug)]
pub(crate) struct NoteFields {
    /// FIELD=VALUE, e.g. subjective="...", plan="..."; repeat for several.
    #[arg(long = "field", value_name = "FIELD=VALUE")]
    pub(crate) fields: Vec<String>,
    /// An outcome measure's score, e.g. PHQ-9=12, GAD-7=8 or "Sleep hours=6.5";
    /// an empty SCORE removes it. Repeat for several.
    #[arg(long = "score", value_name = "MEASURE=SCORE", conflicts_with = "edit")]
    pub(crate) scores: Vec<String>,
    /// Write the note in $EDITOR from a Markdown template.
    #[arg(long)]
    pub(crate) edit: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum NoteCmd {
    /// Write a session note.
    Add {
        case: String,
        /// soap, dap, birp or free.
        #[arg(long, default_value = "soap")]
        format: String,
        /// The session date, YYYY-MM-DD (default: today).
        #[arg(long)]
        date: Option<String>,
        /// The session start, HH:MM.
        #[arg(long)]
        start: Option<String>,
        /// The session length in minutes.
        #[arg(long)]
        minutes: Option<String>,
        #[command(flatten)]
        fields: NoteFields,
        /// Reopen in $EDITOR the draft kept when a note could not be saved.
        #[arg(long, conflicts_with_all = ["edit", "scores"])]
        resume: bool,
    },
    /// Change fields of an unsigned note (edits merge with other devices' edits).
    Edit {
        case: String,
        note: String,
        #[command(flatten)]
        fields: NoteFields,
        /// Reopen in $EDITOR the draft kept when an edit could not be saved.
        #[arg(long, conflicts_with_all = ["edit", "scores"])]
        resume: bool,
    },
    /// A case's notes.
    List { case: String },
    /// One note in full.
    Show { case: String, note: String },
    /// Sign a note: it is locked from then on; corrections go in addenda.
    Sign { case: String, note: String },
    /// Comment on a note (any role from comment up; signed notes too).
    Comment {
        case: String,
        note: String,
        #[arg(long)]
        text: String,
    },
    /// Add a dated correction or addition to a signed note.
    Addendum {
        case: String,
        note: String,
        #[arg(long)]
        text: String,
    },
    /// Settle an edit another device made to a signed note before it saw
    /// the signature (`note show` lists them): keep it as an addendum, or
    /// discard it. Either way the note reads as signed.
    #[command(group(clap::ArgGroup::new("choice").required(true).args(["as_addendum", "discard"])))]
    Late {
        case: String,
        note: String,
        /// The field the late edit changed, as `note show` names it.
        field: String,
        #[arg(long)]
        as_addendum: bool,
        #[arg(long)]
        discard: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum PrivateCmd {
    /// Add a psychotherapy note to a case's private document.
    Add {
        case: String,
        #[arg(long)]
        text: String,
    },
    /// A case's psychotherapy notes.
    List { case: String },
}
