//! `casebook ui` spoken to over plain HTTP/1.1, so that each request is
//! sent exactly as a browser (or an attacker) would send it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Child;

use super::{Relay, init_at, relay, start_ui};

/// A running `casebook ui`, stopped when dropped.
pub struct Page {
    pub child: Child,
    pub port: u16,
    pub token: String,
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a page test keeps alive while it runs: the relay, and the folder
/// its homes are in.
pub struct Kept {
    pub relay: Relay,
    pub dir: tempfile::TempDir,
}

/// What most page tests begin with: `casebook ui` over Dr. Rivera's home,
/// set up against a relay in a fresh folder (kept alive by [`Kept`]).
pub async fn started() -> (Page, std::path::PathBuf, Kept) {
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let page = Page::start(&home, &[]);
    (page, home, Kept { relay, dir })
}

impl Page {
    pub fn start(home: &std::path::Path, extra: &[&str]) -> Page {
        let (child, url) = start_ui(home, extra);
        let url = url.as_str();
        let rest = url.strip_prefix("http://127.0.0.1:").expect(url);
        let (port, token) = rest.split_once("/?token=").expect(url);
        Page {
            child,
            port: port.parse().unwrap(),
            token: token.to_string(),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.host())
    }

    /// One request, with the right Host unless `headers` give another.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {}\r\n", self.host()));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "POST" {
            // As a browser's form post, empty or not.
            req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let mut lines = head.lines();
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        Answer {
            status,
            headers,
            body: body.to_string(),
        }
    }

    /// The session cookie, from the printed link.
    pub fn sign_in(&self) -> String {
        let a = self.send("GET", &format!("/?token={}", self.token), &[], "");
        assert_eq!(a.status, 303, "{a:?}");
        assert_eq!(a.header("location"), Some("/"), "the token leaves the URL");
        let set = a.header("set-cookie").unwrap().to_string();
        let name = format!("casebook_{}=", self.port);
        assert!(set.starts_with(&name), "{set}");
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(attr), "{set}");
        }
        set.split(';').next().unwrap().to_string()
    }

    /// A form posted by the page itself.
    pub fn post(&self, cookie: &str, path: &str, body: &str) -> Answer {
        let origin = self.origin();
        self.send(
            "POST",
            path,
            &[("Cookie", cookie), ("Origin", &origin)],
            body,
        )
    }

    /// Signs in and unlocks with [`PASS`](super::PASS); the cookie.
    pub fn unlocked(&self) -> String {
        let cookie = self.sign_in();
        let body = format!("passphrase={}", form(super::PASS));
        assert_eq!(self.post(&cookie, "/unlock", &body).status, 303);
        cookie
    }

    /// A new case made from the page; its address.
    pub fn new_case(&self, cookie: &str, name: &str) -> String {
        let made = self.post(cookie, "/cases", &format!("client_name={}", form(name)));
        assert_eq!(made.status, 303, "{made:?}");
        made.header("location").unwrap().to_string()
    }

    pub fn get(&self, cookie: &str, path: &str) -> Answer {
        self.send("GET", path, &[("Cookie", cookie)], "")
    }
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The value a hidden input of a page holds.
pub fn hidden(body: &str, name: &str) -> String {
    body.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no {name}: {body}"))
        .to_string()
}

/// `application/x-www-form-urlencoded` of one value.
pub fn form(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Waits up to 20 s for `check` to hold, for what a background sync brings.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{what} never happened");
}
