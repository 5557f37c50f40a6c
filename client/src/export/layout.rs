//! Laying text out on pages: blocks of text in a few styles, wrapped at
//! word boundaries to the page's width (measured with the embedded font's
//! own advances) and broken into pages. Text arrives as data and is only
//! ever measured and drawn, never interpreted.

use skrifa::instance::{LocationRef, Size};
use skrifa::{FontRef, MetadataProvider};

/// A4 in points, and the margins.
pub const PAGE_W: f32 = 595.0;
pub const PAGE_H: f32 = 842.0;
pub const MARGIN: f32 = 56.0;
/// Room kept at the foot of each page for the footer.
pub const FOOTER: f32 = 28.0;

/// How a block of text looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Title,
    Heading,
    Subheading,
    Label,
    Body,
    Small,
}

impl Style {
    pub fn size(self) -> f32 {
        match self {
            Style::Title => 18.0,
            Style::Heading => 14.0,
            Style::Subheading => 11.5,
            Style::Label => 9.5,
            Style::Body => 10.0,
            Style::Small => 8.5,
        }
    }

    pub fn bold(self) -> bool {
        matches!(
            self,
            Style::Title | Style::Heading | Style::Subheading | Style::Label
        )
    }

    /// Space above a block of this style.
    fn before(self) -> f32 {
        match self {
            Style::Title => 0.0,
            Style::Heading => 16.0,
            Style::Subheading => 12.0,
            Style::Label => 6.0,
            Style::Body | Style::Small => 2.0,
        }
    }

    /// Body text sits indented under its label.
    fn indent(self) -> f32 {
        match self {
            Style::Body => 10.0,
            _ => 0.0,
        }
    }

    fn leading(self) -> f32 {
        self.size() * 1.35
    }
}

/// A paragraph (or several, split at newlines) in one style.
#[derive(Clone, Debug)]
pub struct Block {
    pub style: Style,
    pub text: String,
}

/// One line placed on a page: `y` is its baseline from the page's top.
#[derive(Clone, Debug)]
pub struct Line {
    pub style: Style,
    pub x: f32,
    pub y: f32,
    pub text: String,
}

/// Measures text in the embedded fonts.
pub struct Measure<'a> {
    regular: FontRef<'a>,
    bold: FontRef<'a>,
}

impl<'a> Measure<'a> {
    pub fn new(regular: &'a [u8], bold: &'a [u8]) -> Option<Measure<'a>> {
        Some(Measure {
            regular: FontRef::new(regular).ok()?,
            bold: FontRef::new(bold).ok()?,
        })
    }

    /// The width of `text` in points. A character the font lacks counts as
    /// a wide one, so a line never runs past the margin.
    pub fn width(&self, style: Style, text: &str) -> f32 {
        let font = if style.bold() {
            &self.bold
        } else {
            &self.regular
        };
        let size = style.size();
        let charmap = font.charmap();
        let metrics = font.glyph_metrics(Size::new(size), LocationRef::default());
        text.chars()
            .map(|c| {
                charmap
                    .map(c)
                    .and_then(|g| metrics.advance_width(g))
                    .unwrap_or(size)
            })
            .sum()
    }
}

/// Text as it may be drawn: tabs become spaces and every other control
/// character (a colleague's stray escape sequence included) is dropped.
pub fn printable(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            '\n' => Some('\n'),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// Wraps one paragraph to `width`: greedy, at spaces; a word wider than a
/// line is broken between characters.
fn wrap(m: &Measure, style: Style, para: &str, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in para.split(' ') {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if m.width(style, &candidate) <= width {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        // The word alone: broken if it cannot fit on a line of its own.
        for c in word.chars() {
            let mut next = line.clone();
            next.push(c);
            if m.width(style, &next) > width && !line.is_empty() {
                lines.push(std::mem::replace(&mut line, c.to_string()));
            } else {
                line = next;
            }
        }
    }
    lines.push(line);
    lines
}

/// Lays the blocks out on as many pages as they need.
pub fn paginate(m: &Measure, blocks: &[Block]) -> Vec<Vec<Line>> {
    let bottom = PAGE_H - MARGIN - FOOTER;
    let mut pages: Vec<Vec<Line>> = vec![Vec::new()];
    let mut y = MARGIN;
    for b in blocks {
        let x = MARGIN + b.style.indent();
        let width = PAGE_W - MARGIN - x;
        let text = printable(&b.text);
        let lines: Vec<String> = text
            .split('\n')
            .flat_map(|p| wrap(m, b.style, p, width))
            .collect();
        y += b.style.before();
        // A heading never ends a page alone: it moves on with a line or two
        // of what follows.
        let keep = if matches!(b.style, Style::Body | Style::Small) {
            1.0
        } else {
            3.0
        };
        if y + b.style.leading() * keep > bottom && !pages.last().is_some_and(Vec::is_empty) {
            pages.push(Vec::new());
            y = MARGIN;
        }
        for text in lines {
            if y + b.style.leading() > bottom {
                pages.push(Vec::new());
                y = MARGIN;
            }
            y += b.style.leading();
            pages.last_mut().expect("a page").push(Line {
                style: b.style,
                x,
                y,
                text,
            });
        }
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure() -> Measure<'static> {
        Measure::new(super::super::pdf::REGULAR, super::super::pdf::BOLD).unwrap()
    }

    #[test]
    fn lines_fit_the_page_and_nothing_is_lost() {
        let m = measure();
        let word = "x".repeat(300);
        let text = format!("{} {word} end", "sleep diary ".repeat(200));
        let pages = paginate(
            &m,
            &[Block {
                style: Style::Body,
                text: text.clone(),
            }],
        );
        let mut back = String::new();
        for l in pages.iter().flatten() {
            assert!(m.width(l.style, &l.text) <= PAGE_W - MARGIN - l.x + 0.01);
            assert!(l.y <= PAGE_H - MARGIN - FOOTER);
            back.push_str(&l.text);
        }
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(squash(&back), squash(&text));
    }

    #[test]
    fn many_blocks_go_onto_many_pages() {
        let m = measure();
        let blocks: Vec<Block> = (0..400)
            .map(|i| Block {
                style: if i % 2 == 0 {
                    Style::Label
                } else {
                    Style::Body
                },
                text: format!("line {i}"),
            })
            .collect();
        let pages = paginate(&m, &blocks);
        assert!(pages.len() > 5);
        assert_eq!(pages.iter().map(Vec::len).sum::<usize>(), 400);
    }

    #[test]
    fn control_characters_are_not_drawn() {
        assert_eq!(printable("a\u{1b}[2Jb\tc\r\nd"), "a[2Jb c\nd");
    }
}
