//! What the CLI adds to an error of the core: a stable code for scripts
//! (`--json`), and what to do next, in this CLI's words.

/// The causes under an error worth a line each: one whose words the line
/// above already says (an error that names its source in its own message)
/// is left out, so nothing is said twice.
pub fn causes(e: &anyhow::Error) -> Vec<String> {
    let mut said = e.to_string();
    let mut out = Vec::new();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !said.contains(&text) {
            out.push(text.clone());
        }
        said = text;
    }
    out
}

/// A sync that refused some of what the relay served: the report listed
/// each, and the command ends apart from other failures, with
/// [`REFUSED_EXIT`] and the code `refused_from_relay`, so that a script or
/// a service manager sees a relay serving what no device can accept.
#[derive(Debug, thiserror::Error)]
#[error("{0} of what the relay served was refused (listed above); nothing of it was applied")]
pub struct RefusedFromRelay(pub usize);

/// The exit code of a sync that refused some of what the relay served.
pub const REFUSED_EXIT: u8 = 3;

/// A sync that found documents held only in part: changes they hold build
/// on changes the relay never served, or another device of the account
/// told of changes the relay took from it and never served here (it lost
/// them, withholds them, or was restored from an older copy). It ends with [`INCOMPLETE_EXIT`] and the
/// code `incomplete_from_relay`; a refusal in the same round takes
/// precedence, as [`RefusedFromRelay`].
#[derive(Debug, thiserror::Error)]
#[error("{0} document(s) are incomplete (listed above): the relay has not served changes it took")]
pub struct IncompleteFromRelay(pub usize);

/// The exit code of a sync that left documents incomplete.
pub const INCOMPLETE_EXIT: u8 = 4;

/// A stable code for an error, for scripts reading `--json` errors: it
/// names the kind of failure, never its wording, which may change.
pub fn error_code(e: Option<&casebook::Error>) -> &'static str {
    use casebook::Error as E;
    use casebook::backup::BackupError as B;
    use casebook::export::ExportError as X;
    use casebook::net::NetError as N;
    use casebook_shared::frames::ErrorCode as C;
    let Some(e) = e else {
        return "usage";
    };
    match e {
        E::Store(casebook::store::StoreError::WrongPassphrase) => "wrong_passphrase",
        E::Store(casebook::store::StoreError::NotInitialised) => "no_home",
        E::Store(_) => "store",
        E::Net(N::Relay {
            code: C::Limited, ..
        }) => "relay_limited",
        E::Net(N::Relay { .. }) => "relay_refused",
        E::Net(N::Resolve(_) | N::Connect { .. } | N::Io(_)) => "relay_unreachable",
        E::Net(N::WrongCertificate { .. }) => "wrong_fingerprint",
        E::Net(N::Protocol(_)) => "relay_protocol",
        E::Note(_) => "invalid_note",
        E::UnknownCase(_) => "unknown_case",
        E::AmbiguousCase(..) => "ambiguous_case",
        E::UnknownDevice(_) => "unknown_device",
        E::UnknownContact(_) => "unknown_contact",
        E::ContactExists => "contact_exists",
        E::ContactUnverified(_) => "contact_unverified",
        E::ContactNotOnRelay(_) => "contact_not_on_relay",
        E::NotThisRelay(_) => "not_this_relay",
        E::RecoveryKey => "recovery_key",
        E::NoName => "no_name",
        E::BadName(_) => "bad_name",
        E::Export(X::FontBroken(_) | X::Pdf(_)) => "export_failed",
        // A mistyped option value, as clap's own are.
        E::Export(X::UnknownSection(_) | X::SinceAfterUntil { .. }) => "usage",
        E::Share(_)
        | E::Contact(_)
        | E::Comment(_)
        | E::Role(_)
        | E::RecordLife(_)
        | E::Held(_)
        | E::Device(_)
        | E::NoKey(_)
        | E::EditTooLarge { .. }
        | E::Export(_)
        | E::Backup(B::PassphraseTooShort)
        | E::PrivateNotShared => "not_allowed",
        E::Backup(B::WrongSecret) => "wrong_backup_secret",
        E::Backup(_) => "backup_failed",
        E::CreateDir { .. } | E::WriteFile { .. } => "io",
        E::Rollback(_) => "rollback",
        E::Revoked => "revoked",
        E::Pairing(_) => "pairing",
        E::Recovery(_) => "recovery",
        _ => "internal",
    }
}

/// A command line clap refused. Under `--json` a script reads one JSON
/// object from stderr for every error, this one too (code `usage`); help
/// and version, and everything without `--json`, are clap's own, as is the
/// exit code.
pub fn usage_error(e: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    let asked_json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if !asked_json || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let v = serde_json::json!({ "error": {
        "code": error_code(None),
        "message": e.render().to_string().trim_end().trim_start_matches("error: "),
        "causes": Vec::<String>::new(),
        "hint": serde_json::Value::Null,
    }});
    super::term::json_err(&v.to_string());
    std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// What to do next, in this CLI's words, for an error of the core (which
/// names no command of any front end).
pub fn hint(e: &casebook::Error) -> Option<String> {
    use casebook::Error as E;
    use casebook::net::NetError as N;
    use casebook::pairing::PairingError as P;
    use casebook_shared::frames::ErrorCode;
    Some(match e {
        E::UnknownCase(_) | E::AmbiguousCase(..) => "`casebook case list` shows the ids".into(),
        E::UnknownDevice(_) => "`casebook device list` shows the ids".into(),
        E::UnknownContact(_) => "add one with `casebook contact add NAME CARD`".into(),
        E::ContactExists => "`casebook contact list` shows your contacts".into(),
        E::ContactUnverified(name) => format!(
            "compare safety numbers (`casebook whoami` on their side), then `casebook contact verify \"{name}\" NUMBER`"
        ),
        E::ContactNotOnRelay(name) => format!(
            "ask {name} to run `casebook sync` once (an account set up with --offline registers then), \
             and check that you both use the same relay (`casebook whoami` shows it)"
        ),
        E::NoName => "set it with `casebook whoami --set-name \"Dr. ...\"`".into(),
        E::Contact(casebook::sharing::ContactError::NotACard { .. }) => {
            "a card is the line `casebook whoami` prints on their side".into()
        }
        E::RecoveryKey => {
            "`casebook device revoke ID --recovery-key` revokes it and shows new words".into()
        }
        E::Store(casebook::store::StoreError::NotInitialised) => {
            "run `casebook init` (first device), `casebook device join` or `casebook recover`"
                .into()
        }
        E::Pairing(P::NotACode(_)) => "type the code `casebook device add` printed".into(),
        E::Pairing(P::NoAnswer | P::WrongCode) => "start again with `casebook device add`".into(),
        E::NotThisRelay(_) => {
            "`relay set` follows this account's relay to a new address or certificate; check \
             the address and fingerprint you gave (`casebook relay show` shows the ones in use)"
                .into()
        }
        E::RecordLife(casebook::app::retention::RecordLifeError::NotDue { .. }) => {
            "`casebook case dispose CASE --now` disposes of it before then, deliberately; the \
             trail records that it was early"
                .into()
        }
        E::Export(casebook::export::ExportError::SinceAfterUntil { .. }) => {
            "give --since a date on or before --until".into()
        }
        E::Export(casebook::export::ExportError::PrivateNarrowed) => {
            "run one export with --notes or --sections and without --include-private, and \
             another with --include-private and dates only"
                .into()
        }
        E::Pairing(P::NoDeviceWaiting) => {
            "check the code, and that `casebook device add` is still running".into()
        }
        E::Net(N::WrongCertificate { .. }) => {
            "check the fingerprint with whoever runs the relay (`casebook-relay fingerprint` prints \
             it on its machine); if yours is right, what answered is not your relay"
                .into()
        }
        E::Net(N::Io(_) | N::Connect { .. }) => {
            "nothing is lost: what you wrote stays on this device and is sent at the next \
             `casebook sync`; check that the relay is running and reachable"
                .into()
        }
        E::Net(N::Relay {
            code: ErrorCode::Limited,
            reason,
        }) if reason.starts_with("limit ") => {
            "nothing is lost: what you wrote stays on this device; try again later, or ask \
               the relay's operator to raise the limit named above"
                .into()
        }
        E::Rollback(casebook::sync::RollbackError::AccountLogTurned { why, .. }) => {
            if *why == casebook::sync::TURN_MOVED_ON {
                "another device wrote to the account's log meanwhile: sync again".into()
            } else if *why == casebook::sync::TURN_LACKS_DEVICES {
                "nothing is lost on this device; the relay was restored from an older copy and \
                 written to since (see \"Backups\" in the README): sync a device of that \
                 account paired before the restore, then sync here again"
                    .into()
            } else {
                "this device holds a part of that account's log the relay lost that cannot be \
                 joined to what was written there since (see \"Backups\" in the README); \
                 nothing here is lost and it stays readable here: export what only this device \
                 holds (`casebook export`); if the log is this account's, pair this device again \
                 from one that syncs, and if it is a colleague's, tell them"
                    .into()
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_said_again() {
        let wrapped =
            casebook::Error::Pairing(casebook::pairing::PairingError::NotACode("1234".into()));
        let e = anyhow::Error::from(wrapped);
        assert!(e.to_string().contains("is not a pairing code"));
        assert!(causes(&e).is_empty(), "{:?}", causes(&e));
        let e = e.context("joining failed");
        assert_eq!(causes(&e).len(), 1, "the pairing error, once");
        let plain = anyhow::anyhow!("the disk is full").context("the backup was not written");
        assert_eq!(causes(&plain), ["the disk is full"]);
    }
}
