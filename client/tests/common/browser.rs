//! What the browser tests share: headless Chromium driven through
//! chromedriver (Debian's `chromium` and `chromium-driver`), controls found
//! by their visible labels, screenshots under `target/tmp/ui-screens/`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

/// A child process stopped when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn found(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` (said loudly) where they are
/// missing outside CI.
pub fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = found("chromium").or_else(|| found("chromium-browser"));
    let driver = found("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("chromium and chromedriver are needed in CI (.ci/run installs them)")
        }
        _ => {
            eprintln!(
                "SKIPPED: the browser tests need chromium and chromedriver \
                 (apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver on a free port, once it listens.
pub fn start_driver(driver: &Path) -> (Running, u16) {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (running, port);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("chromedriver did not start");
}

pub async fn session(chromium: &Path, driver_port: u16) -> Client {
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=900,1100"],
        }
    });
    let caps = caps.as_object().unwrap().clone().into_iter().collect();
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a chromedriver session")
}

/// The control a visible label names.
pub async fn labelled(c: &Client, label: &str) -> fantoccini::elements::Element {
    let l = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&format!(
            "//label[normalize-space()='{label}']"
        )))
        .await
        .unwrap_or_else(|e| panic!("no label {label:?}: {e}"));
    let id = l
        .attr("for")
        .await
        .unwrap()
        .expect("a label names its control");
    c.find(Locator::Id(&id)).await.unwrap()
}

/// The button or link with this text.
pub async fn control(c: &Client, text: &str) -> fantoccini::elements::Element {
    let found = c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&format!(
            "//button[normalize-space()='{text}'] | //a[normalize-space()='{text}']"
        )))
        .await;
    match found {
        Ok(e) => e,
        Err(e) => panic!(
            "no control {text:?} ({e}) at {}: {}",
            c.current_url().await.unwrap(),
            c.source().await.unwrap()
        ),
    }
}

pub async fn shows(c: &Client, text: &str) {
    for _ in 0..50 {
        if c.source().await.unwrap().contains(text) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "the page never showed {text:?}: {}",
        c.source().await.unwrap()
    );
}

pub async fn screenshot(c: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screens");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.png")),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
}

/// Types `text` into the control a visible label names.
pub async fn fill(c: &Client, label: &str, text: &str) {
    labelled(c, label)
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("cannot type into {label:?}: {e}"));
}
