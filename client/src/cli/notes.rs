//! `casebook note`: writing, reading, signing and settling session notes,
//! in flags or in `$EDITOR`.

use anyhow::{Result, anyhow, bail};
use casebook::notes::{
    LateEditChoice, NoteFormat, NoteInput, parse_date, parse_duration, parse_start_time,
};

use casebook::Home;

use super::print::Out;
use super::term::tell;
use super::{case_id, editor, note_fields, open, parse_fields, time};
use crate::{Cli, NoteCmd};

pub(super) fn note(cli: &Cli, out: &Out, cmd: &NoteCmd) -> Result<()> {
    let mut home = open(cli)?;
    match cmd {
        NoteCmd::Add {
            case,
            format,
            date,
            start,
            minutes,
            fields,
            resume,
        } => {
            let id = case_id(&home, case)?;
            let date = parse_date(date.as_deref().unwrap_or(&time::today()))?;
            let start_time = start.as_deref().map(parse_start_time).transpose()?;
            let duration = minutes.as_deref().map(parse_duration).transpose()?;
            let given = note_fields(fields)?;
            if !fields.edit && !*resume {
                let mut input = NoteInput::new(date, NoteFormat::parse(format)?);
                input.start_time = start_time;
                input.duration = duration;
                input.fields = given;
                let note_id = home.add_note(&id, input)?;
                return out
                    .changed("note.added", note_id)
                    .with("case", id.to_hex())
                    .created();
            }
            // In the editor, the template holds all that is known, and what
            // it says when saved is the note.
            let (format, template) = if *resume {
                let kept = home.drafts().take(&id, None)?.ok_or_else(|| {
                    anyhow!("no draft of a new note is kept for this case; start one with `casebook note add {case} --edit`")
                })?;
                (NoteFormat::parse(&kept.format)?, kept.text.clone())
            } else {
                let format = NoteFormat::parse(format)?;
                let mut known = vec![("date".to_string(), date.clone())];
                known.extend(start_time.map(|t| ("start_time".to_string(), t)));
                known.extend(duration.map(|m| ("duration".to_string(), m.to_string())));
                for (k, v) in given {
                    match known.iter_mut().find(|(f, _)| *f == k) {
                        Some(slot) => slot.1 = v,
                        None => known.push((k, v)),
                    }
                }
                (format, casebook::notes::note_to_markdown(format, &known))
            };
            let draft = casebook::app::Draft {
                case: id.to_hex(),
                note: None,
                format: format.as_str().to_string(),
                text: template,
            };
            let reopen = format!("casebook note add {case} --resume");
            let note_id = write_in_editor(&mut home, draft, *resume, &reopen, |home, text| {
                let mut input = NoteInput::new(date, format);
                input.fields = casebook::notes::markdown_to_fields(format, text)?;
                home.add_note(&id, input)
            })?;
            out.changed("note.added", note_id)
                .with("case", id.to_hex())
                .created()
        }
        NoteCmd::Edit {
            case,
            note,
            fields,
            resume,
        } => {
            let id = case_id(&home, case)?;
            let current = home.docs().read_case(&id, |c| {
                c.resolve_note_id(note)
                    .map(|n| c.note(&n).expect("resolved ids exist"))
            })??;
            if !fields.edit && !*resume {
                let changes = note_fields(fields)?;
                if changes.is_empty() {
                    bail!(
                        "nothing to change: give --field FIELD=VALUE, --score MEASURE=SCORE or --edit"
                    );
                }
                home.edit_note(&id, &current.id, &changes)?;
                return out
                    .changed("note.edited", &current.id)
                    .with("case", id.to_hex())
                    .done("note updated");
            }
            let template = if *resume {
                home.drafts()
                    .take(&id, Some(&current.id))?
                    .ok_or_else(|| anyhow!("no draft of an edit to this note is kept"))?
                    .text
                    .clone()
            } else {
                let mut start = current.editable_fields();
                for (k, v) in parse_fields(&fields.fields)? {
                    match start.iter_mut().find(|(f, _)| *f == k) {
                        Some(slot) => slot.1 = v,
                        None => start.push((k, v)),
                    }
                }
                casebook::notes::note_to_markdown(current.format, &start)
            };
            let draft = casebook::app::Draft {
                case: id.to_hex(),
                note: Some(current.id.clone()),
                format: current.format.as_str().to_string(),
                text: template,
            };
            let reopen = format!("casebook note edit {case} {} --resume", current.id);
            let old = current.editable_fields();
            write_in_editor(&mut home, draft, *resume, &reopen, |home, text| {
                let fields = casebook::notes::markdown_to_fields(current.format, text)?;
                // Only what changed is written, so unchanged fields merge untouched.
                let changes: Vec<_> = fields
                    .into_iter()
                    .filter(|(k, v)| old.iter().find(|(f, _)| f == k).is_none_or(|(_, o)| o != v))
                    .collect();
                home.edit_note(&id, &current.id, &changes)
            })?;
            out.changed("note.edited", &current.id)
                .with("case", id.to_hex())
                .done("note updated")
        }
        NoteCmd::List { case } => {
            let id = case_id(&home, case)?;
            out.note_list(&id, &home.list_notes(&id)?)
        }
        NoteCmd::Show { case, note } => {
            let id = case_id(&home, case)?;
            let n = home.show_note(&id, note)?;
            if !n.late_edits.is_empty() {
                tell!(
                    "Settle each late edit: casebook note late {case} {} FIELD --as-addendum (or --discard)",
                    n.id
                );
            }
            out.note(&id, &n)
        }
        NoteCmd::Sign { case, note } => {
            let id = case_id(&home, case)?;
            let note = home.sign_note(&id, note)?;
            out.changed("note.signed", note)
                .with("case", id.to_hex())
                .done("note signed; later corrections go in `casebook note addendum`")
        }
        NoteCmd::Comment { case, note, text } => {
            let id = case_id(&home, case)?;
            let note = home.comment_note(&id, note, text)?;
            out.changed("note.commented", note)
                .with("case", id.to_hex())
                .done("comment added")
        }
        NoteCmd::Addendum { case, note, text } => {
            let id = case_id(&home, case)?;
            let note = home.add_addendum(&id, note, text)?;
            out.changed("note.addendum_added", note)
                .with("case", id.to_hex())
                .done("addendum added")
        }
        NoteCmd::Late {
            case,
            note,
            field,
            as_addendum,
            discard: _,
        } => {
            let id = case_id(&home, case)?;
            let choice = if *as_addendum {
                LateEditChoice::Addendum
            } else {
                LateEditChoice::Discard
            };
            let note = home.settle_late_edit(&id, note, field, choice)?;
            let action = match choice {
                LateEditChoice::Addendum => "note.late_edit_kept",
                LateEditChoice::Discard => "note.late_edit_discarded",
            };
            out.changed(action, note)
                .with("case", id.to_hex())
                .with("field", field.as_str())
                .done(match choice {
                    LateEditChoice::Addendum => {
                        "late edit kept as an addendum; the note reads as signed"
                    }
                    LateEditChoice::Discard => "late edit discarded; the note reads as signed",
                })
        }
    }
}

/// Opens a draft's text in the editor and saves what comes back with
/// `save`. Typed text is never lost: what cannot be saved is kept as a
/// draft, with how to reopen it in the error, and a resumed draft whose
/// editor fails is put back as it was.
fn write_in_editor<T>(
    home: &mut Home,
    mut draft: casebook::app::Draft,
    resumed: bool,
    reopen: &str,
    save: impl FnOnce(&mut Home, &str) -> casebook::Result<T>,
) -> Result<T> {
    let edited = match editor::edit(&draft.text) {
        Ok(t) => t,
        Err(e) => {
            if resumed {
                home.drafts().keep(draft)?;
            }
            return Err(e);
        }
    };
    match save(home, &edited) {
        Ok(v) => Ok(v),
        Err(e) => {
            draft.text = edited;
            home.drafts().keep(draft)?;
            bail!(
                "{e}\nnothing is lost: what you typed is kept (sealed in this home); \
                 reopen it with `{reopen}`"
            )
        }
    }
}
