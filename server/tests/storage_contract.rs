//! The storage contract (`common/contract.rs`) against both backends: each
//! check on a fresh SQLite database in a temporary folder, and on a fresh
//! database of a PostgreSQL server the test starts itself.

#[path = "common/contract.rs"]
mod contract;
#[path = "common/disposal_contract.rs"]
mod disposal_contract;
#[path = "common/postgres.rs"]
mod pg;

mod sqlite {
    use super::{contract, disposal_contract};
    use casebook_relay::sqlite::SqliteStore;

    fn fresh() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("relay.db")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_repeated_envelope_is_acknowledged_once() {
        let (_dir, s) = fresh();
        contract::a_repeated_envelope_is_acknowledged_once(&s).await;
    }

    #[tokio::test]
    async fn a_snapshot_replaces_what_it_covers_and_covers_only_rise() {
        let (_dir, s) = fresh();
        contract::a_snapshot_replaces_what_it_covers_and_covers_only_rise(&s).await;
    }

    #[tokio::test]
    async fn a_log_append_at_a_taken_position_is_refused_whole() {
        let (_dir, s) = fresh();
        contract::a_log_append_at_a_taken_position_is_refused_whole(&s).await;
    }

    #[tokio::test]
    async fn a_fetch_pages_end_to_end() {
        let (_dir, s) = fresh();
        contract::a_fetch_pages_end_to_end(&s).await;
    }

    #[tokio::test]
    async fn acknowledged_writes_survive_a_reopen() {
        let (dir, s) = fresh();
        let path = dir.path().join("relay.db");
        contract::acknowledged_writes_survive_a_reopen(s, |s| async move {
            s.close();
            drop(s);
            SqliteStore::open(&path).unwrap()
        })
        .await;
    }

    #[tokio::test]
    async fn a_disposal_keeps_itself_alone() {
        let (_dir, s) = fresh();
        disposal_contract::a_disposal_keeps_itself_alone(&s).await;
    }

    #[tokio::test]
    async fn a_disposal_given_back_alone_replaces_any_log() {
        let (_dir, s) = fresh();
        disposal_contract::a_disposal_given_back_alone_replaces_any_log(&s).await;
    }

    #[tokio::test]
    async fn an_envelope_whose_logs_moved_is_refused_as_stale() {
        let (_dir, s) = fresh();
        contract::an_envelope_whose_logs_moved_is_refused_as_stale(&s).await;
    }

    #[tokio::test]
    async fn a_log_and_a_document_read_back_as_stored() {
        let (_dir, s) = fresh();
        contract::a_log_and_a_document_read_back_as_stored(&s).await;
    }

    #[tokio::test]
    async fn a_mailbox_slot_takes_one_message() {
        let (_dir, s) = fresh();
        contract::a_mailbox_slot_takes_one_message(&s).await;
    }

    #[tokio::test]
    async fn the_indexes_answer_from_the_logs() {
        let (_dir, s) = fresh();
        contract::the_indexes_answer_from_the_logs(&s).await;
    }
}

mod postgres {
    use super::pg::TestPostgres;
    use super::{contract, disposal_contract};
    use casebook_relay::postgres::{PgStore, migrate};
    use casebook_relay::storage::Storage;

    /// A server with one migrated database, and a store open on it; `None`
    /// where PostgreSQL is not installed (outside CI).
    async fn fresh() -> Option<(TestPostgres, PgStore)> {
        let server = TestPostgres::start()?;
        let url = server.create_db("relay").await;
        migrate(&url, None).await.expect("migrate");
        let store = PgStore::open(&url, None).await.expect("open");
        Some((server, store))
    }

    /// Two stores on one fresh database: two relay nodes.
    async fn two_nodes() -> Option<(TestPostgres, PgStore, PgStore)> {
        let (pg, a) = fresh().await?;
        let b = PgStore::open(&pg.url("relay"), None)
            .await
            .expect("a second node");
        Some((pg, a, b))
    }

    #[tokio::test]
    async fn a_repeated_envelope_is_acknowledged_once() {
        let Some((_pg, s)) = fresh().await else {
            return;
        };
        contract::a_repeated_envelope_is_acknowledged_once(&s).await;
    }

    #[tokio::test]
    async fn a_snapshot_replaces_what_it_covers_and_covers_only_rise() {
        let Some((_pg, s)) = fresh().await else {
            return;
        };
        contract::a_snapshot_replaces_what_it_covers_and_covers_only_rise(&s).await;
    }

    #[tokio::test]
    async fn a_log_append_at_a_taken_position_is_refused_whole() {
        let Some((_pg, s)) = fresh().await else {
            return;
        };
        contract::a_log_append_at_a_taken_position_is_refused_whole(&s).await;
    }

    #[tokio::test]
    async fn a_fetch_pages_end_to_end() {
        let Some((_pg, s)) = fresh().await else {
            return;
        };
        contract::a_fetch_pages_end_to_end(&s).await;
    }

    /// Reopened after the server itself crashed (an immediate stop, no
    /// shutdown checkpoint): what was acknowledged comes back from the WAL.
    #[tokio::test]
    async fn acknowledged_writes_survive_a_server_crash() {
        let Some((mut pg, s)) = fresh().await else {
            return;
        };
        let url = pg.url("relay");
        let server = &mut pg;
        contract::acknowledged_writes_survive_a_reopen(s, move |s| async move {
            s.close().await;
            drop(s);
            server.crash_and_restart();
            PgStore::open(&url, None)
                .await
                .expect("open after the crash")
        })
        .await;
    }

    #[tokio::test]
    async fn a_disposal_keeps_itself_alone() {
        let Some((_pg, s)) = fresh().await else {
            return;
        };
        disposal_contract::a_disposal_keeps_itself_alone(&s).await;
    }

    #[tokio::test]
    async fn a_disposal_given_back_alone_replaces_any_log() {
        let Some((_pg, s)) = fresh().await else {
            return;
        };
        disposal_contract::a_disposal_given_back_alone_replaces_any_log(&s).await;
    }

    #[tokio::test]
    async fn an_envelope_whose_logs_moved_is_refused_as_stale() {
        let Some((_pg, s)) = fresh().await else {
            return;
        };
        contract::an_envelope_whose_logs_moved_is_refused_as_stale(&s).await;
    }

    #[tokio::test]
    async fn a_log_and_a_document_read_back_as_stored() {
        let Some((_pg, s)) = fresh().await else {
            return;
        };
        contract::a_log_and_a_document_read_back_as_stored(&s).await;
    }

    #[tokio::test]
    async fn a_mailbox_slot_takes_one_message() {
        let Some((_pg, s)) = fresh().await else {
            return;
        };
        contract::a_mailbox_slot_takes_one_message(&s).await;
    }

    #[tokio::test]
    async fn the_indexes_answer_from_the_logs() {
        let Some((_pg, s)) = fresh().await else {
            return;
        };
        contract::the_indexes_answer_from_the_logs(&s).await;
    }

    /// The list of log changes is pruned to its newest rows; a node asking
    /// from before them is told it lost track, one asking from within them
    /// is not.
    #[tokio::test]
    async fn pruned_log_changes_say_so() {
        use casebook_relay::storage::{LogChange, WriteJob};
        use casebook_shared::crypto::Sig;
        use casebook_shared::ids::{AccountId, DeviceId};
        use casebook_shared::signed::Signed;
        let Some((_pg, s)) = fresh().await else {
            return;
        };
        let start = s.log_version().await.unwrap();
        for n in 0..5u8 {
            let job = WriteJob::Account {
                account: AccountId([n + 1; 32]),
                first_seq: 0,
                entries: vec![Signed {
                    body: vec![n; 8],
                    signer: DeviceId([n; 32]),
                    sig: Sig([n; 64]),
                }],
                devices: Vec::new(),
            };
            assert!(s.submit(job).await.unwrap()[0].is_ok());
        }
        let now = s.log_version().await.unwrap();
        let (all, upto) = s.log_changes(start).await.unwrap();
        assert_eq!((all.len(), upto), (5, now));
        assert_eq!(s.prune_log_changes(2).await.unwrap(), 3);
        let (behind, upto) = s.log_changes(start).await.unwrap();
        assert!(behind.contains(&LogChange::Lost), "{behind:?}");
        assert_eq!(upto, now);
        let (recent, _) = s.log_changes(now - 2).await.unwrap();
        assert!(!recent.contains(&LogChange::Lost), "{recent:?}");
        assert_eq!(recent.len(), 2);
    }

    /// Two nodes: a device waiting on one is handed what another device
    /// put through the other, and the slot is then spent on both.
    #[tokio::test]
    async fn a_pairing_message_crosses_nodes() {
        let Some((_pg, a, b)) = two_nodes().await else {
            return;
        };
        let (got, ()) = tokio::join!(
            casebook_relay::mailbox::take(&b, [7; 16], 2, std::time::Duration::from_secs(20)),
            async {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                a.mailbox_put([7; 16], 2, b"spake2".to_vec()).await.unwrap();
            }
        );
        assert_eq!(got.unwrap(), Some(b"spake2".to_vec()));
        assert_eq!(a.mailbox_take([7; 16], 2).await.unwrap(), None);
        assert!(b.mailbox_put([7; 16], 2, b"again".to_vec()).await.is_err());
    }

    /// Two nodes write one document at once, one envelope per commit,
    /// while a device fetches it through either node, each time from the
    /// highest number it has: it must miss nothing. The numbers are drawn
    /// from one sequence when a row is inserted, so without each node's
    /// lock on the document a later number could commit first and the
    /// device's mark pass an earlier one still in flight, for good.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_writing_one_document_lose_nothing_to_a_reader() {
        use casebook_shared::ids::DocId;

        let Some((_pg, a, b)) = two_nodes().await else {
            return;
        };
        let doc = DocId([0x42; 16]);
        let done = std::sync::atomic::AtomicUsize::new(0);
        let reader = async {
            let (mut mark, mut seen, mut turn) = (0u64, Vec::new(), 0usize);
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst) == 2;
                let node = if turn % 2 == 0 { &a } else { &b };
                turn += 1;
                let (items, _) = node.fetch(vec![(doc, mark)], usize::MAX).await.unwrap();
                for it in items {
                    assert!(it.seq > mark, "in order, after the mark");
                    mark = it.seq;
                    seen.push(it.seq);
                }
                if finished {
                    return (seen, turn);
                }
            }
        };
        let (from_a, from_b, (seen, fetches)) = tokio::join!(
            write_many(&a, doc, b'a', &done),
            write_many(&b, doc, b'b', &done),
            reader
        );
        let mut acked: Vec<u64> = from_a.into_iter().chain(from_b).collect();
        acked.sort_unstable();
        assert_eq!(acked.len(), 2 * usize::from(EACH));
        assert!(fetches > 10, "the device read while the nodes wrote");
        let missed: Vec<&u64> = acked.iter().filter(|s| !seen.contains(s)).collect();
        assert!(missed.is_empty(), "the reader's mark passed {missed:?}");
        assert_eq!(seen, acked);
    }

    const EACH: u16 = 150;

    /// Stores [`EACH`] envelopes of `doc` through `store`, one per commit,
    /// and counts itself `done`; returns their numbers.
    async fn write_many(
        store: &PgStore,
        doc: casebook_shared::ids::DocId,
        tag: u8,
        done: &std::sync::atomic::AtomicUsize,
    ) -> Vec<u64> {
        use casebook_relay::storage::{Fence, NewEnvelope, WriteJob};
        use casebook_shared::ids::{AccountId, EnvelopeId};
        let mut acked = Vec::new();
        for i in 0..EACH {
            let mut id = [tag; 24];
            id[..2].copy_from_slice(&i.to_be_bytes());
            let env = NewEnvelope {
                doc,
                id: EnvelopeId(id),
                snapshot_covers: None,
                bytes: id.to_vec(),
                fence: Fence {
                    access_len: 0,
                    account: AccountId([0xaa; 32]),
                    account_len: 0,
                },
                wants_prev: false,
            };
            let r = store
                .submit(WriteJob::Envelopes(vec![env].into()))
                .await
                .expect("the writer answers");
            acked.push(r[0].as_ref().expect("stored").seq);
        }
        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        acked
    }
}
