//! `casebook ui` in a real browser: headless Chromium driven through
//! chromedriver (Debian's `chromium` and `chromium-driver`), finding every
//! control by its visible label, as a person using the keyboard or a
//! screen reader would. Each main page is saved as a screenshot under
//! `target/tmp/ui-screens/`.
//!
//! Where the two programs are missing this says so loudly and passes;
//! with `CI=true` their absence fails the run (`.ci/run` installs them).

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};

/// A child process stopped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn found(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` (said loudly) where they are
/// missing outside CI.
fn browser() -> Option<(PathBuf, PathBuf)> {
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver on a free port, once it listens.
fn start_driver(driver: &Path) -> (Running, u16) {
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

async fn session(chromium: &Path, driver_port: u16) -> Client {
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
async fn labelled(c: &Client, label: &str) -> fantoccini::elements::Element {
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
async fn control(c: &Client, text: &str) -> fantoccini::elements::Element {
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

async fn shows(c: &Client, text: &str) {
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

async fn screenshot(c: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screens");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.png")),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_therapist_unlocks_writes_signs_finds_and_locks_in_a_browser() {
    let Some((chromium, driver)) = browser() else {
        return;
    };
    let relay = relay().await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("laptop");
    init_at(&home, &relay, "Dr. Rivera");
    let (_driver, driver_port) = start_driver(&driver);
    let (page, url) = start_ui(&home, &[]);
    let _page = Running(page);
    let c = session(&chromium, driver_port).await;

    c.goto(&url).await.unwrap();
    let at = c.current_url().await.unwrap();
    assert_eq!(at.query(), None, "the token left the address: {at}");
    screenshot(&c, "1-unlock").await;
    labelled(&c, "Passphrase")
        .await
        .send_keys(PASS)
        .await
        .unwrap();
    control(&c, "Unlock").await.click().await.unwrap();

    control(&c, "New case").await.click().await.unwrap();
    labelled(&c, "Client name")
        .await
        .send_keys("Jordan Avery")
        .await
        .unwrap();
    control(&c, "Create case").await.click().await.unwrap();
    shows(&c, "Session notes").await;
    screenshot(&c, "2-case").await;

    control(&c, "New note").await.click().await.unwrap();
    labelled(&c, "Format").await;
    labelled(&c, "Date").await;
    labelled(&c, "Subjective")
        .await
        .send_keys("Slept badly; worried about work.")
        .await
        .unwrap();
    labelled(&c, "Plan")
        .await
        .send_keys("Keep a sleep diary.")
        .await
        .unwrap();
    screenshot(&c, "3-new-note").await;
    control(&c, "Save").await.click().await.unwrap();
    control(&c, "Sign").await.click().await.unwrap();
    shows(&c, "Signed by Dr. Rivera").await;
    screenshot(&c, "4-signed-note").await;

    c.goto(url.split("/?").next().unwrap()).await.unwrap();
    labelled(&c, "Search")
        .await
        .send_keys("diary")
        .await
        .unwrap();
    c.find(Locator::Css("form.search button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The hit: its case, the section it is in, and its words.
    shows(&c, "<h1>Search</h1>").await;
    let hits = c
        .find(Locator::Css("ul.hits"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        hits.contains("Jordan Avery") && hits.contains("Plan") && hits.contains("diary"),
        "{hits}"
    );
    screenshot(&c, "5-search").await;

    // The same record in the CLI: one core.
    let cli = ok(&home, &["note", "list", "Jordan"]);
    assert!(cli.contains("signed"), "{cli}");

    control(&c, "Lock").await.click().await.unwrap();
    labelled(&c, "Passphrase").await;
    c.close().await.unwrap();
}
