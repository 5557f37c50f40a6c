//! Printing to a terminal: text from others made harmless, and a closed
//! pipe an ordinary end.
//!
//! Names, note text and a relay's error reasons come from other people's
//! devices (or a relay) and reach the person's terminal: a colleague with
//! write access who types `ESC [2J` into a field would otherwise clear the
//! owner's screen, or worse (terminals answer some sequences, move the
//! cursor over earlier lines, or set the window title). Every line printed
//! here shows control characters, and the Unicode controls that reorder
//! text, as visible escapes. `--json` output needs nothing: JSON escapes
//! control characters itself.

use std::borrow::Cow;
use std::io::Write;

/// Whether a character could act on the terminal rather than show.
fn acts(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        // Bidirectional overrides and isolates: text that reads one way
        // and is stored another.
        || matches!(
            c,
            '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{061c}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Text with every acting character shown as `\u{..}`.
pub fn harmless(s: &str) -> Cow<'_, str> {
    if !s.chars().any(acts) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if acts(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes a line to stdout. A reader that went away (`| head`) ends the
/// program quietly, as it does for other tools.
pub fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let written = writeln!(stdout, "{}", harmless(line)).and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        // Nothing sensible is left to say it on.
        std::process::exit(1);
    }
}

/// JSON with every acting character inside its strings written as a
/// `\uXXXX` escape (serde_json escapes only C0 controls): still valid JSON,
/// the same text once parsed, and nothing a terminal obeys. Outside strings
/// JSON holds only spaces and newlines, which do not act.
pub fn json_out(text: &str) {
    let safe = json_safe(text);
    let mut stdout = std::io::stdout().lock();
    let written = writeln!(stdout, "{safe}").and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        std::process::exit(1);
    }
}

fn json_safe(text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        if acts(c) {
            // Every acting character is in the Basic Multilingual Plane.
            safe.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            safe.push(c);
        }
    }
    safe
}

/// [`json_out`], to stderr: an error for a script that asked for JSON.
pub fn json_err(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{}", json_safe(text));
}

/// Writes generated text (completions, a manual page) to stdout as it is,
/// ending quietly if the reader went away.
pub fn raw_out(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        std::process::exit(if e.kind() == std::io::ErrorKind::BrokenPipe {
            0
        } else {
            1
        });
    }
}

/// Writes a line to stderr (nowhere to report a failure to).
pub fn err(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{}", harmless(line));
}

/// `println!`, through [`out`].
macro_rules! say {
    () => { $crate::cli::term::out("") };
    ($($t:tt)*) => { $crate::cli::term::out(&format!($($t)*)) };
}

/// `eprintln!`, through [`err`].
macro_rules! tell {
    () => { $crate::cli::term::err("") };
    ($($t:tt)*) => { $crate::cli::term::err(&format!($($t)*)) };
}

pub(crate) use {say, tell};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_acts_and_keeps_what_shows() {
        assert_eq!(harmless("plain\ttext\nnext"), "plain\ttext\nnext");
        assert_eq!(harmless("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(harmless("over\rwrite"), "over\\u{d}write");
        assert_eq!(harmless("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(harmless("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(harmless("Dr. Müller"), "Dr. Müller");
        assert_eq!(harmless("a\u{2028}b\u{200f}"), "a\\u{2028}b\\u{200f}");
    }
}
