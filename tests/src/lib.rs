//! Helpers for the end-to-end tests and the benchmark: a real relay on a
//! loopback port chosen by the system, and device homes in temporary folders.

pub mod hostile_relay;
pub mod restore_turn;
pub mod rogue;
pub mod sim;
pub mod udp_proxy;
pub mod uploader;

use std::path::Path;
use std::time::Duration;

use casebook::Home;
use casebook::net::Relay;
use casebook_relay::{Config, Handle};
use tempfile::TempDir;

/// The passphrase test homes use.
pub const PASSPHRASE: &[u8] = b"correct horse battery staple";

/// What a test relay holds in memory: less than most tests write, so they
/// run against logs read back from the store as a large relay's are.
pub const SMALL_CACHE: casebook_relay::state::Capacity = casebook_relay::state::Capacity {
    accounts: 3,
    docs: 4,
};

/// A relay running on 127.0.0.1 with its data in a temporary folder.
pub struct TestRelay {
    pub handle: Handle,
    pub data: TempDir,
}

impl TestRelay {
    /// Starts a relay on port 0.
    pub async fn start() -> TestRelay {
        let data = tempfile::tempdir().expect("a temporary folder");
        Self::start_with(
            data,
            "127.0.0.1:0".parse().expect("a literal address"),
            None,
        )
        .await
    }

    /// Starts a relay on port 0 that keeps its data in the PostgreSQL
    /// database at `url` (migrated); its data folder holds its certificate.
    pub async fn start_on_postgres(url: &str) -> TestRelay {
        let data = tempfile::tempdir().expect("a temporary folder");
        Self::start_with(
            data,
            "127.0.0.1:0".parse().expect("a literal address"),
            Some(url),
        )
        .await
    }

    /// A second relay node over the same PostgreSQL database, with this
    /// one's certificate (so devices pin one fingerprint) and a data
    /// folder of its own. With `follow` off it hears nothing of what other
    /// nodes write, so only the store's fences keep it right.
    pub async fn another_node(&self, url: &str, follow: bool) -> TestRelay {
        let data = tempfile::tempdir().expect("a temporary folder");
        let mut config = Config::new(
            "127.0.0.1:0".parse().expect("a literal address"),
            data.path(),
        );
        config.store = Some(url.to_string());
        config.follow = follow;
        config.cache = SMALL_CACHE;
        config.cert = Some((
            self.data.path().join("relay-cert.der"),
            self.data.path().join("relay-key.der"),
        ));
        let handle = casebook_relay::start(config)
            .await
            .expect("the second node starts");
        TestRelay { handle, data }
    }

    /// Starts again on the same data folder and address (after
    /// [`TestRelay::stop`]), so the homes that know it reach it again.
    pub async fn restart(data: TempDir, addr: std::net::SocketAddr) -> TestRelay {
        Self::start_with(data, addr, None).await
    }

    /// Starts on `data` and `addr`, over SQLite in `data` or the
    /// PostgreSQL database at `store`.
    pub async fn start_with(
        data: TempDir,
        addr: std::net::SocketAddr,
        store: Option<&str>,
    ) -> TestRelay {
        let mut config = Config::new(addr, data.path());
        config.store = store.map(str::to_string);
        config.cache = SMALL_CACHE;
        // Starting again on the port it had: a test running beside this
        // one may hold that port for a moment (a client's socket).
        let mut tries = 0;
        let handle = loop {
            match casebook_relay::start(config.clone()).await {
                Err(casebook_relay::StartError::Bind(_, e))
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && addr.port() != 0
                        && tries < 100 =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                r => break r.expect("the relay starts"),
            }
        };
        TestRelay { handle, data }
    }

    /// The address to give clients.
    pub fn addr(&self) -> String {
        self.handle.addr.to_string()
    }

    /// Stops, finishing what was acknowledged; returns the data folder.
    pub async fn stop(self) -> TempDir {
        self.handle.shutdown().await;
        self.data
    }

    /// A copy of the data folder taken with the relay stopped, as a
    /// clinic's backup takes it; the relay starts again on the same
    /// folder and address.
    pub async fn copy(self) -> (TestRelay, TempDir) {
        let addr = self.handle.addr;
        let data = self.stop().await;
        let copy = tempfile::tempdir().expect("a temporary folder");
        copy_files(data.path(), copy.path());
        (TestRelay::restart(data, addr).await, copy)
    }

    /// Stops, puts back the data folder's `copy` in place of what it
    /// holds, and starts again on the same address.
    pub async fn restore(self, copy: &Path) -> TestRelay {
        let addr = self.handle.addr;
        let data = self.stop().await;
        for entry in std::fs::read_dir(data.path()).expect("the data folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_file() {
                std::fs::remove_file(path).expect("a file removed");
            }
        }
        copy_files(copy, data.path());
        TestRelay::restart(data, addr).await
    }
}

/// Copies the files (not folders) of `from` into `to`.
fn copy_files(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("a folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_file() {
            let name = path.file_name().expect("a file name");
            std::fs::copy(&path, to.join(name)).expect("a file copied");
        }
    }
}

/// Where homes reach a relay: the real one, or a hostile one in front of it.
pub trait Reach {
    fn addr(&self) -> String;
    fn fingerprint(&self) -> [u8; 32];
}

impl Reach for TestRelay {
    fn addr(&self) -> String {
        TestRelay::addr(self)
    }
    fn fingerprint(&self) -> [u8; 32] {
        self.handle.fingerprint
    }
}

impl Reach for hostile_relay::HostileRelay {
    fn addr(&self) -> String {
        hostile_relay::HostileRelay::addr(self)
    }
    fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }
}

/// Sets up the first device of a new account in `dir`.
pub fn init(dir: &Path, relay: &impl Reach, name: &str) -> Home {
    init_with_words(dir, relay, name).0
}

/// Sets up a first device and returns its recovery words too.
pub fn init_with_words(dir: &Path, relay: &impl Reach, name: &str) -> (Home, String) {
    let (home, words) =
        Home::init(dir, PASSPHRASE, name, &relay.addr(), relay.fingerprint()).expect("init");
    (home, words.to_string())
}

/// Pairs a new device in `dir` with `existing`, as `device add` / `device join` do.
pub async fn pair(existing: &mut Home, dir: &Path, relay: &impl Reach) -> Home {
    let conn = existing.connect().await.expect("connect");
    let code = casebook::pairing::new_code();
    let addr = relay.addr();
    let (added, joined) = tokio::join!(
        existing.pair_add(&conn, &code, Duration::from_secs(60)),
        casebook::pairing::join(dir, PASSPHRASE, &code, &addr, relay.fingerprint())
    );
    added.expect("pair_add");
    conn.close().await;
    joined.expect("join")
}

/// Makes `name` (holding `account`) a verified contact of `home`, as
/// `contact add` and `contact verify` do after the safety numbers matched.
pub fn befriend(home: &mut Home, name: &str, account: &casebook_shared::ids::AccountId) {
    home.contacts()
        .add(name, &casebook::sharing::card(account, name))
        .expect("contact add");
    home.contacts()
        .verify(name, &casebook::sharing::safety_number(account))
        .expect("contact verify");
}

/// Shares `case` with the contact `with` in `role`, its psychotherapy
/// notes included, and syncs: a co-therapist's terms.
pub async fn share_with_private(
    home: &mut Home,
    case: &casebook_shared::ids::DocId,
    with: &str,
    role: casebook_shared::access::Role,
) {
    let conn = home.connect().await.expect("connect");
    home.share(
        &conn,
        case,
        with,
        role,
        "co-therapy",
        "signed release",
        None,
        true,
    )
    .await
    .expect("share");
    home.sync(&conn, &mut |_| {}).await.expect("sync");
    conn.close().await;
}

/// Shares `case` with a verified contact for a consultation, then syncs if
/// `then_sync`.
pub async fn share_case(
    home: &mut Home,
    case: &casebook_shared::ids::DocId,
    with: &str,
    role: &str,
    then_sync: bool,
) {
    let conn = home.connect().await.expect("connect");
    home.share(
        &conn,
        case,
        with,
        casebook::sharing::parse_role(role).expect("a role"),
        "consultation",
        "signed release",
        None,
        false,
    )
    .await
    .expect("share");
    if then_sync {
        home.sync(&conn, &mut |_| {}).await.expect("sync");
    }
    conn.close().await;
}

/// A free-text note of `text`, dated 2026-11-20.
pub fn free_note(text: &str) -> casebook::notes::NoteInput {
    let mut n = casebook::notes::NoteInput::new(
        "2026-11-20",
        casebook::notes::NoteFormat::parse("free").expect("the free format"),
    );
    n.fields = vec![("text".into(), text.into())];
    n
}

/// A sync that refused nothing, and left no case incomplete or held back.
pub fn assert_clean(r: &casebook::sync::SyncReport) {
    assert!(
        r.refused.is_empty() && r.incomplete.is_empty() && r.held.is_empty(),
        "{r:?}"
    );
}

/// A case for "Jordan Avery" with one SOAP note, `n1`, whose plan is
/// `plan`, written (not yet synced) on `home`.
pub fn case_with_a_plan(home: &mut Home, plan: &str) -> casebook_shared::ids::DocId {
    let case = home
        .create_case("Jordan Avery", "2026-11-20")
        .expect("a case");
    let mut n = casebook::notes::NoteInput::new("2026-11-20", casebook::notes::NoteFormat::Soap);
    n.fields = vec![("plan".into(), plan.into())];
    home.edit_case(&case, "note", |c| Ok(c.add_note(n, "n1", "Dr. Rivera")?))
        .expect("a note");
    case
}

/// Dr. Rivera's laptop (in `dirs[0]`) with a synced case whose note `n1`
/// plans "walk daily", and a tablet paired to it (in `dirs[1]`) that has
/// synced it too.
pub async fn laptop_and_tablet(
    relay: &impl Reach,
    dirs: &[tempfile::TempDir],
) -> (Home, Home, casebook_shared::ids::DocId) {
    let mut laptop = init(dirs[0].path(), relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, dirs[1].path(), relay).await;
    sync(&mut tablet).await;
    (laptop, tablet, case)
}

/// The text of each note of `case` on `home`, sorted.
pub fn notes_of(home: &mut Home, case: &casebook_shared::ids::DocId) -> Vec<String> {
    let ids: Vec<String> = home
        .list_notes(case)
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    let mut texts: Vec<String> = ids
        .iter()
        .map(|id| {
            let note = home.show_note(case, id).unwrap();
            let text = note.fields.iter().map(|(_, v)| v.trim());
            text.filter(|v| !v.is_empty()).collect::<Vec<_>>().join(" ")
        })
        .collect();
    texts.sort();
    texts
}

/// The plan of note `n1` of `case`, as `home` shows it.
pub fn plan_of(home: &mut Home, case: &casebook_shared::ids::DocId) -> String {
    home.docs()
        .read_case(case, |c| {
            c.note("n1").expect("note n1").field("plan").to_string()
        })
        .expect("the case reads")
}

/// Sets the plan of note `n1` of `case` on `home` (not yet synced).
pub fn set_plan(home: &mut Home, case: &casebook_shared::ids::DocId, plan: &str) {
    home.edit_case(case, "note", |c| {
        Ok(c.edit_note("n1", &[("plan".into(), plan.into())])?)
    })
    .expect("the plan is edited");
}

/// One sync round on a fresh connection.
pub async fn sync(home: &mut Home) -> casebook::sync::SyncReport {
    let conn = home.connect().await.expect("connect");
    let report = home.sync(&conn, &mut |_| {}).await.expect("sync");
    conn.close().await;
    report
}

/// Like [`sync`], returning the error.
pub async fn try_sync(home: &mut Home) -> casebook::Result<casebook::sync::SyncReport> {
    let conn: Relay = home.connect().await?;
    let report = home.sync(&conn, &mut |_| {}).await;
    conn.close().await;
    report
}

/// Every envelope of `doc` the SQLite relay stores (those a snapshot
/// replaced, kept as empty rows, left out), as a hostile operator would
/// hand them to a colleague.
pub fn stored_envelopes(
    relay: &TestRelay,
    doc: &casebook_shared::ids::DocId,
) -> Vec<casebook_shared::envelope::Envelope> {
    let db = rusqlite::Connection::open(relay.data.path().join("relay.db")).expect("relay.db");
    let mut stmt = db
        .prepare("SELECT bytes FROM envelopes WHERE doc = ?1 AND length(bytes) > 0")
        .expect("the envelopes table");
    stmt.query_map([&doc.0[..]], |r| r.get::<_, Vec<u8>>(0))
        .expect("a query")
        .map(|b| b.expect("a row"))
        .filter_map(|b| casebook_shared::envelope::Envelope::decode(b).ok())
        .collect()
}

/// Every byte of every file under `dir`.
pub fn all_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p.display().to_string(), b));
            }
        }
    }
    out
}

/// Files under `dir` that contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    all_bytes(dir)
        .into_iter()
        .filter(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
        .map(|(p, _)| p)
        .collect()
}

/// A new document's first access entry, of `owner`, signed by `signer`:
/// for tests that speak to the relay as a device would.
pub fn doc_genesis(
    owner: &casebook_shared::account::AccountState,
    signer: &casebook_shared::crypto::DeviceSigner,
) -> (casebook_shared::ids::DocId, casebook_shared::signed::Signed) {
    use casebook_shared::access::{self, DocEntry, DocOp};
    let doc = casebook_shared::ids::DocId(casebook_shared::crypto::random_bytes());
    let entry = DocEntry {
        doc,
        seq: 0,
        prev: None,
        at: 1,
        account: owner.id,
        account_len: owner.len,
        op: DocOp::Genesis {
            key: access::key_envelope(
                &doc,
                0,
                &casebook_shared::crypto::SecretKey::random(),
                owner,
            )
            .expect("a key envelope to a real account key"),
        },
    };
    (
        doc,
        casebook_shared::signed::Signed::sign(signer, access::SIG_LABEL, &entry),
    )
}
