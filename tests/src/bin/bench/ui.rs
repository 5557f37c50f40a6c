//! The web page's speed on a large home: the real `casebook ui` binary
//! (built beside this one) over a home of N cases × 20 notes, spoken to
//! over loopback HTTP as a browser would. Each figure is the time from
//! sending a request to reading the whole answer, so it holds the server's
//! work and one loopback round trip, which is measured too for comparison.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::pct;

/// How many times each request is timed.
const REQUESTS: usize = 200;

/// A running `casebook ui`, stopped when dropped.
struct Page {
    child: Child,
    port: u16,
    cookie: String,
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One answer: status, headers (lower-case names) and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Page {
    fn send(&self, method: &str, path: &str, body: &str) -> Result<Answer> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        let origin = format!("http://127.0.0.1:{}", self.port);
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nCookie: {}\r\nOrigin: {origin}\r\n",
            self.port, self.cookie
        );
        if method == "POST" {
            req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s.write_all(req.as_bytes())?;
        let mut raw = String::new();
        s.read_to_string(&mut raw)?;
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.get(9..12))
            .and_then(|s| s.parse().ok())
            .context("an HTTP answer")?;
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        Ok(Answer {
            status,
            headers,
            body: body.to_string(),
        })
    }

    /// Times `n` requests made by `make(i)`; each must answer `want`.
    fn time(
        &self,
        n: usize,
        want: u16,
        mut make: impl FnMut(usize) -> (String, String, String),
    ) -> Result<Vec<Duration>> {
        let mut times = Vec::with_capacity(n);
        for i in 0..n {
            let (method, path, body) = make(i);
            let t = Instant::now();
            let a = self.send(&method, &path, &body)?;
            times.push(t.elapsed());
            if a.status != want {
                bail!(
                    "{method} {path}: {} {}",
                    a.status,
                    a.body.chars().take(300).collect::<String>()
                );
            }
        }
        times.sort();
        Ok(times)
    }
}

/// `casebook ui` over `home`, signed in and unlocked with `pass`.
fn start(home: &Path, pass: &str) -> Result<Page> {
    let bin = std::env::current_exe()?.with_file_name("casebook");
    if !bin.is_file() {
        bail!(
            "{} is missing: build it beside the benchmark first (cargo build --release -p casebook)",
            bin.display()
        );
    }
    let mut child = Command::new(&bin)
        .arg("--home")
        .arg(home)
        .args(["ui", "--no-browser"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut first = Vec::new();
    let mut out = child.stdout.take().context("ui stdout")?;
    let mut byte = [0u8];
    while out.read(&mut byte)? == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    let url = String::from_utf8(first)?;
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .context("the ui's address")?;
    let (port, token) = rest.split_once("/?token=").context("the ui's token")?;
    let mut page = Page {
        child,
        port: port.parse()?,
        cookie: String::new(),
    };
    let signed = page.send("GET", &format!("/?token={token}"), "")?;
    page.cookie = signed
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .context("a session cookie")?
        .to_string();
    unlock(&page, pass)?;
    Ok(page)
}

fn unlock(page: &Page, pass: &str) -> Result<()> {
    let unlocked = page.send(
        "POST",
        "/unlock",
        &format!("passphrase={}", pass.replace(' ', "+")),
    )?;
    if unlocked.status != 303 {
        bail!("unlock: {}", unlocked.status);
    }
    Ok(())
}

/// The value of hidden input `name` in a page.
fn hidden(body: &str, name: &str) -> Option<String> {
    let after = body.split(&format!("name=\"{name}\" value=\"")).nth(1)?;
    Some(after.split('"').next()?.to_string())
}

fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The page's rows over `home` (N cases × 20 notes, passphrase `pass`).
pub fn ui_rows(home: &Path, pass: &str, cases: usize) -> Result<Vec<(String, String, String)>> {
    let page = start(home, pass)?;
    // The page makes every case ready to search right after unlocking;
    // one search waits for what is not yet ready, so what follows is
    // measured as a person meets it a little after unlocking.
    let t = Instant::now();
    page.send("POST", "/search", "q=warm")?;
    let warmed = t.elapsed().as_secs_f64();
    // Locked and unlocked: the search text each case was made into is kept
    // in the store now, and the first search unseals it instead of loading
    // every document.
    page.send("POST", "/lock", "")?;
    unlock(&page, pass)?;
    let t = Instant::now();
    page.send("POST", "/search", "q=warm")?;
    let rewarmed = t.elapsed().as_secs_f64();
    let round_trip = page.time(REQUESTS, 200, |_| {
        ("GET".into(), "/app.css".into(), String::new())
    })?;
    let list = page.time(REQUESTS, 200, |_| ("GET".into(), "/".into(), String::new()))?;
    let listed = page.send("GET", "/", "")?.body;
    let ids: Vec<String> = listed
        .split("href=\"/cases/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|s| s.len() == 32)
        .map(str::to_string)
        .collect();
    if ids.len() < cases.min(10) {
        bail!("the case list shows {} cases", ids.len());
    }
    let open = page.time(REQUESTS, 200, |i| {
        (
            "GET".into(),
            format!("/cases/{}", ids[i * 7 % ids.len()]),
            String::new(),
        )
    })?;
    // A client's name, and two words that stand together in some notes.
    let by_name = page.time(REQUESTS, 200, |i| {
        (
            "POST".into(),
            "/search".into(),
            format!("q=Client+{:04}", i * 13 % cases.max(1)),
        )
    })?;
    let by_text = page.time(REQUESTS, 200, |_| {
        ("POST".into(), "/search".into(), "q=partner+conflict".into())
    })?;

    // Keystrokes: a draft saved one character at a time, as app.js saves.
    let case = &ids[0];
    let made = page.send(
        "POST",
        &format!("/cases/{case}/notes"),
        "format=soap&date=2026-11-20&f_plan=Keep",
    )?;
    let note = made.header("location").context("a new note")?.to_string();
    let drawn = page.send("GET", &note, "")?.body;
    let mut heads = hidden(&drawn, "heads").context("the draft's heads")?;
    let mut plan = String::from("Keep");
    let mut saves = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        plan.push(if i % 6 == 5 { ' ' } else { 'a' });
        let body = format!(
            "format=soap&heads={}&date=2026-11-20&f_plan={}",
            escape(&heads),
            escape(&plan)
        );
        let t = Instant::now();
        let a = page.send("POST", &format!("{note}/autosave"), &body)?;
        saves.push(t.elapsed());
        if a.status != 200 {
            bail!("autosave: {} {}", a.status, a.body);
        }
        heads = a
            .body
            .split("\"heads\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .context("new heads")?
            .to_string();
    }
    saves.sort();

    let row = |what: &str, t: &[Duration], target: &str| {
        (
            format!(
                "page, {what} ({} requests, {cases} cases × 20 notes)",
                t.len()
            ),
            format!("p50 {:.1} ms, p99 {:.1} ms", pct(t, 0.5), pct(t, 0.99)),
            target.to_string(),
        )
    };
    Ok(vec![
        (
            format!("page, the first search after unlocking ({cases} cases × 20 notes)"),
            format!(
                "{warmed:.1} s (every case read once and kept ready; the page makes them ready in the background from the unlock on)"
            ),
            String::new(),
        ),
        (
            format!("page, the first search after unlocking again ({cases} cases × 20 notes)"),
            format!("{rewarmed:.2} s (each case's search text read back from the store)"),
            String::new(),
        ),
        row(
            "loopback HTTP round trip for the stylesheet, for comparison",
            &round_trip,
            "",
        ),
        row("case list", &list, "≤ 50 ms p99"),
        row("search by a client's name", &by_name, "≤ 50 ms p99"),
        row("search for two words of note text", &by_text, "≤ 50 ms p99"),
        row("open a case", &open, "≤ 100 ms p99"),
        row("a keystroke's autosave", &saves, "≤ 20 ms p99"),
    ])
}
