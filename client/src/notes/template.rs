//! The Markdown a note or profile is edited as in `$EDITOR`: one
//! `## field_name` heading per field with the field's text under it.
//!
//! Headings are matched loosely (`## Client Response` is `client_response`)
//! because people retype them; an unknown heading is an error rather than
//! being dropped, so no text typed under a mistyped heading is lost. A line of
//! field text that would read as a heading is written with a `\` in front and
//! read back without it.

use super::format::{NoteFormat, PROFILE_FIELDS};
use super::note::{Note, Profile};
use super::{NoteError, Result};

/// A note's fields as an editor template: the format's
/// [`fields`](NoteFormat::fields) in order, each with its value from `fields`
/// (empty if absent).
pub fn note_to_markdown(format: NoteFormat, fields: &[(String, String)]) -> String {
    let intro = format!(
        "casebook {} note. Write under each heading; an empty section is cleared, a removed heading leaves its field unchanged.",
        format.as_str().to_uppercase()
    );
    render(&intro, &format.fields(), fields)
}

/// Reads an edited note template back into `(field, value)` pairs for
/// [`CaseDoc::add_note`](super::CaseDoc::add_note) or
/// [`CaseDoc::edit_note`](super::CaseDoc::edit_note), in the order written.
pub fn markdown_to_fields(format: NoteFormat, text: &str) -> Result<Vec<(String, String)>> {
    parse(text, &format.fields(), || format!("a {format} note"))
}

/// A case profile as an editor template.
pub fn profile_to_markdown(profile: &Profile) -> String {
    render(
        "casebook case profile. Write under each heading.",
        PROFILE_FIELDS,
        &profile.fields(),
    )
}

/// Reads an edited profile template back into pairs for
/// [`CaseDoc::set_profile`](super::CaseDoc::set_profile).
pub fn markdown_to_profile(text: &str) -> Result<Vec<(String, String)>> {
    parse(text, PROFILE_FIELDS, || "the case profile".into())
}

impl Note {
    /// This note as an editor template.
    pub fn to_markdown(&self) -> String {
        note_to_markdown(self.format, &self.editable_fields())
    }
}

fn render(intro: &str, names: &[&str], values: &[(String, String)]) -> String {
    let mut out = format!("<!-- {intro} -->\n\n");
    for name in names {
        out.push_str("## ");
        out.push_str(name);
        out.push('\n');
        let value = values
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str());
        for line in value.lines() {
            if is_heading(line.trim_start_matches('\\')) {
                out.push('\\');
            }
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn parse(
    text: &str,
    allowed: &[&str],
    context: impl Fn() -> String,
) -> Result<Vec<(String, String)>> {
    let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
    let mut in_comment = false;
    for line in text.lines() {
        if is_heading(line) {
            let name = normalize(&line[2..]);
            if !allowed.contains(&name.as_str()) {
                return Err(NoteError::UnknownField {
                    field: line[2..].trim().to_owned(),
                    context: context(),
                    valid: allowed.join(", "),
                });
            }
            if sections.iter().any(|(n, _)| *n == name) {
                return Err(NoteError::DuplicateField(name));
            }
            sections.push((name, Vec::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            let unescaped = line
                .strip_prefix('\\')
                .filter(|rest| is_heading(rest.trim_start_matches('\\')));
            body.push(unescaped.unwrap_or(line));
        } else if in_comment || line.trim_start().starts_with("<!--") {
            in_comment = !line.contains("-->");
        } else if !line.trim().is_empty() {
            return Err(NoteError::TextBeforeHeading(line.trim().to_owned()));
        }
    }
    Ok(sections
        .into_iter()
        .map(|(name, body)| {
            let blank = |l: &&str| l.trim().is_empty();
            let start = body.iter().position(|l| !blank(l)).unwrap_or(body.len());
            let end = body
                .iter()
                .rposition(|l| !blank(l))
                .map_or(start, |e| e + 1);
            (name, body[start..end].join("\n"))
        })
        .collect())
}

/// `## name`, or a bare `##`; not `###`.
fn is_heading(line: &str) -> bool {
    line.strip_prefix("##")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
}

/// `Client Response` and `client-response` are `client_response`.
fn normalize(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn round_trip() {
        let fields = pairs(&[
            ("date", "2024-03-01"),
            ("start_time", "14:00"),
            ("duration", ""),
            (
                "subjective",
                "Slept badly.\n\n## not a heading\n\\## nor this\n### fine",
            ),
            ("objective", ""),
            ("assessment", "  indented first line\nlast line  "),
            ("plan", "Sleep diary."),
            ("risk", "None reported."),
        ]);
        let md = note_to_markdown(NoteFormat::Soap, &fields);
        assert!(
            md.contains("\n## subjective\nSlept badly.\n\n\\## not a heading\n\\\\## nor this\n")
        );
        let back = markdown_to_fields(NoteFormat::Soap, &md).unwrap();
        let all: Vec<_> = NoteFormat::Soap
            .fields()
            .into_iter()
            .map(|f| {
                let v = fields.iter().find(|(k, _)| k == f).map_or("", |(_, v)| v);
                (f.to_owned(), v.to_owned())
            })
            .collect();
        assert_eq!(back, all);
        assert_eq!(
            markdown_to_fields(NoteFormat::Soap, &md.replace("\n", "\r\n")).unwrap(),
            all
        );
    }

    #[test]
    fn loose_headings_and_errors() {
        let md =
            "<!-- a\nmulti-line comment -->\n\n## Client Response\nengaged\n##\tplan\n\nnext\n\n";
        assert_eq!(
            markdown_to_fields(NoteFormat::Dap, md).unwrap(),
            pairs(&[("client_response", "engaged"), ("plan", "next")])
        );
        let err = markdown_to_fields(NoteFormat::Dap, "## Subjective\nx").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"Subjective\"") && msg.contains("data, assessment, plan"),
            "{msg}"
        );
        assert!(matches!(
            markdown_to_fields(NoteFormat::Dap, "stray\n## data\n"),
            Err(NoteError::TextBeforeHeading(_))
        ));
        assert!(matches!(
            markdown_to_fields(NoteFormat::Dap, "## data\na\n## data\nb"),
            Err(NoteError::DuplicateField(_))
        ));
        assert!(markdown_to_fields(NoteFormat::Free, "## \n").is_err());
    }

    #[test]
    fn profile() {
        let p = Profile {
            presenting_concerns: "Low mood.".into(),
            treatment_plan: String::new(),
            goals: "Return to work.".into(),
        };
        let back = markdown_to_profile(&profile_to_markdown(&p)).unwrap();
        assert_eq!(back, p.fields());
        assert!(markdown_to_profile("## risk\n").is_err());
    }
}
