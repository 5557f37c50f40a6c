//! The file format.
//!
//! `name = value` lines, read by [`Vectors`] and written by [`Writer`].

use super::*;

#[derive(Default)]
pub(crate) struct Vectors {
    pub(crate) values: BTreeMap<String, String>,
}

impl Vectors {
    pub(crate) fn parse(text: &str) -> Self {
        let mut values = BTreeMap::new();
        let mut last: Option<String> = None;
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                last = None;
                continue;
            }
            if line.starts_with(char::is_whitespace) {
                let key = last
                    .as_ref()
                    .unwrap_or_else(|| panic!("line {}: continuation without a name", n + 1));
                values
                    .get_mut(key)
                    .map(|v: &mut String| v.push_str(trimmed))
                    .expect("the previous name was stored");
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("line {}: expected `name = value`", n + 1));
            let name = name.trim().to_string();
            assert!(
                values
                    .insert(name.clone(), value.trim().to_string())
                    .is_none(),
                "line {}: {name} appears twice",
                n + 1
            );
            last = Some(name);
        }
        Vectors { values }
    }

    pub(crate) fn load() -> Self {
        let text = std::fs::read_to_string(VECTORS_PATH)
            .unwrap_or_else(|e| panic!("cannot read {VECTORS_PATH}: {e}"));
        Self::parse(&text)
    }

    pub(crate) fn raw(&self, name: &str) -> &str {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("vector {name} is missing"))
    }

    pub(crate) fn hex(&self, name: &str) -> Vec<u8> {
        hex::decode(self.raw(name)).unwrap_or_else(|e| panic!("vector {name}: bad hex: {e}"))
    }

    pub(crate) fn arr<const N: usize>(&self, name: &str) -> [u8; N] {
        self.hex(name)
            .try_into()
            .unwrap_or_else(|_| panic!("vector {name} is not {N} bytes"))
    }

    pub(crate) fn str(&self, name: &str) -> &str {
        let v = self.raw(name);
        v.strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("vector {name} is not a quoted string"))
    }

    pub(crate) fn num(&self, name: &str) -> u64 {
        self.raw(name)
            .parse()
            .unwrap_or_else(|e| panic!("vector {name} is not a number: {e}"))
    }
}

/// Writes the file: comments, hex wrapped at 64 characters, numbers, strings.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) out: String,
}

impl Writer {
    pub(crate) fn comment(&mut self, text: &str) {
        for line in text.lines() {
            if line.is_empty() {
                self.out.push_str("#\n");
            } else {
                writeln!(self.out, "# {line}").unwrap();
            }
        }
    }

    pub(crate) fn blank(&mut self) {
        self.out.push('\n');
    }

    pub(crate) fn hex(&mut self, name: &str, bytes: &[u8]) {
        let h = hex::encode(bytes);
        let mut chunks = h.as_bytes().chunks(64);
        let first = chunks.next().map(|c| std::str::from_utf8(c).unwrap());
        writeln!(self.out, "{name} = {}", first.unwrap_or("")).unwrap();
        for c in chunks {
            writeln!(self.out, "    {}", std::str::from_utf8(c).unwrap()).unwrap();
        }
    }

    pub(crate) fn num(&mut self, name: &str, n: u64) {
        writeln!(self.out, "{name} = {n}").unwrap();
    }

    pub(crate) fn str(&mut self, name: &str, s: &str) {
        assert!(!s.contains('"') && !s.contains('\n'));
        writeln!(self.out, "{name} = \"{s}\"").unwrap();
    }
}
