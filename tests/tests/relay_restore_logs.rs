//! A relay restored from a copy older than entries of its account logs: a
//! device paired since, an account made since. Every device holds the whole
//! log of its own account and of each account it shares with, each entry
//! signed by a device the log itself made active, so whichever of them
//! meets the relay first sends the log back, and nobody is locked out.

use casebook::net::{NetError, Relay};
use casebook_shared::account::{self, AccountState};
use casebook_shared::crypto::{DeviceSigner, DhSecret};
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::signed::Signed;
use casebook_tests::*;

/// A case is opened, the phone paired and writing, after the copy; a
/// colleague's account is made after it. Restored, the relay knows neither
/// the phone nor the colleague's device, nor the case. Each device sends
/// its account's log back as it connects, and the documents its account
/// owns that the relay lacks, and goes on: the phone's note and the case
/// reach the laptop, and the colleague reads the case shared with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_paired_or_an_account_made_after_the_copy_is_let_in_again() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;

    let (relay, copy) = relay.copy().await;

    // A case opened after the copy: the restored relay lacks it whole.
    let later = laptop.create_case("Sam Lee", "2026-11-21").unwrap();
    laptop.add_note(&later, free_note("first session")).unwrap();
    sync(&mut laptop).await;
    let mut phone = pair(&mut laptop, dirs[1].path(), &relay).await;
    sync(&mut phone).await;
    assert_eq!(phone.list_notes(&later).unwrap().len(), 1);
    phone
        .add_note(&case, free_note("seen on the phone"))
        .unwrap();
    sync(&mut phone).await;
    let mut okafor = init(dirs[2].path(), &relay, "Dr. Okafor");
    sync(&mut okafor).await;
    let (_, okafor_account, _, _) = okafor.whoami();

    let relay = relay.restore(copy.path()).await;

    let healed = sync(&mut phone).await;
    assert_clean(&healed);
    assert_eq!(healed.logs_healed, vec![laptop.account_id()], "{healed:?}");
    // The laptop signed the case's access log; the phone sends it back.
    assert!(healed.access_healed.contains(&later), "{healed:?}");
    let trail = phone.trail().entries().unwrap();
    assert!(
        trail
            .iter()
            .any(|r| r.what.contains("lacked the end of this account's log")),
        "the trail says so"
    );
    let healed = sync(&mut okafor).await;
    assert_clean(&healed);
    assert_eq!(healed.logs_healed, vec![okafor_account], "{healed:?}");
    let audit = casebook::audit_sync::audit_doc(&okafor_account);
    assert_eq!(healed.access_healed, vec![audit], "{healed:?}");

    // The relay is whole again: the laptop meets nothing missing, and the
    // phone's note, sent again, reaches it.
    let after = sync(&mut laptop).await;
    assert_clean(&after);
    assert!(after.logs_healed.is_empty(), "{after:?}");
    assert_eq!(laptop.list_notes(&case).unwrap().len(), 2);
    assert_eq!(laptop.list_notes(&later).unwrap().len(), 1);

    befriend(&mut laptop, "Dr. Okafor", &okafor_account);
    share_case(&mut laptop, &case, "Dr. Okafor", "read", true).await;
    sync(&mut okafor).await;
    assert_eq!(okafor.list_notes(&case).unwrap().len(), 2);
    assert_eq!(plan_of(&mut okafor, &case), "walk daily");
    relay.stop().await;
}

/// The phone is paired after the copy. Restored once, the laptop meets the
/// shorter log of its own account in its round and sends it back; restored
/// again, the colleague the case is shared with meets it shorter and sends
/// it back, though the log is another account's. Either way the phone,
/// syncing after, is let in with nothing to heal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_log_shorter_on_the_relay_is_sent_back_by_a_device_that_reads_it() {
    let relay = TestRelay::start().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut laptop = init(dirs[0].path(), &relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut chen = init(dirs[2].path(), &relay, "Dr. Chen");
    sync(&mut chen).await;
    let (_, chen_account, _, _) = chen.whoami();
    befriend(&mut laptop, "Dr. Chen", &chen_account);
    share_case(&mut laptop, &case, "Dr. Chen", "read", true).await;
    sync(&mut chen).await;

    let (relay, copy) = relay.copy().await;
    let mut phone = pair(&mut laptop, dirs[1].path(), &relay).await;
    sync(&mut phone).await;
    // The colleague learns of the phone.
    sync(&mut chen).await;
    // Entries of the laptop's trail the phone has not fetched, which the
    // restore loses.
    set_plan(&mut laptop, &case, "walk daily, sleep diary");
    sync(&mut laptop).await;

    let relay = relay.restore(copy.path()).await;
    let healed = sync(&mut laptop).await;
    assert_clean(&healed);
    assert_eq!(healed.logs_healed, vec![laptop.account_id()], "{healed:?}");
    let after = sync(&mut phone).await;
    assert_clean(&after);
    assert!(after.logs_healed.is_empty(), "{after:?}");
    // The laptop sent its whole trail again: the phone's copy of it has no
    // gap once the laptop writes on.
    set_plan(&mut laptop, &case, "walk daily");
    sync(&mut laptop).await;
    sync(&mut phone).await;
    phone.trail().verify().expect("the laptop's trail, whole");

    let relay = relay.restore(copy.path()).await;
    let healed = sync(&mut chen).await;
    assert_clean(&healed);
    assert_eq!(healed.logs_healed, vec![laptop.account_id()], "{healed:?}");
    let trail = chen.trail().entries().unwrap();
    let whose = format!("the log of account {}", laptop.account_id().short());
    assert!(
        trail.iter().any(|r| r.what.contains(&whose)),
        "the trail names whose log"
    );
    for home in [&mut phone, &mut laptop] {
        let after = sync(home).await;
        assert_clean(&after);
        assert!(after.logs_healed.is_empty(), "{after:?}");
    }

    // Edits flow from the phone to the colleague. The phone's builds on
    // the laptop's edits that the second restore lost, and the laptop did
    // not see that loss (the colleague's signals had moved the case on
    // before it synced). The phone did, and sent back what it holds, under
    // numbers the colleague had already passed: the colleague's sync finds
    // the case lacking, fetches it again from its start in the same round,
    // and has it all.
    set_plan(&mut phone, &case, "walk daily, breathing");
    sync(&mut phone).await;
    assert_clean(&sync(&mut chen).await);
    assert_eq!(plan_of(&mut chen, &case), "walk daily, breathing");
    relay.stop().await;
}

/// An account of `devices` devices: their signers, its log and its state;
/// and the second entry of a log that forks from it after the first.
fn account_of(devices: usize) -> (Vec<DeviceSigner>, Vec<Signed>, AccountState, Signed) {
    let first = DeviceSigner::generate();
    let (genesis, key) = account::genesis(&first, &DhSecret::generate(), 1);
    let mut state = AccountState::from_genesis(&genesis).unwrap();
    let add = |state: &AccountState, next: &DeviceSigner| {
        let info = account::DeviceInfo {
            id: next.device_id(),
            dh: DhSecret::generate().public(),
            kind: account::DeviceKind::Device,
        };
        account::add_device(state, &first, &key, info, 2).unwrap()
    };
    let fork = add(&state, &DeviceSigner::generate());
    let mut log = vec![genesis.clone()];
    let mut signers = Vec::new();
    for _ in 1..devices {
        let next = DeviceSigner::generate();
        let entry = add(&state, &next);
        state.apply(&entry).unwrap();
        log.push(entry);
        signers.push(next);
    }
    signers.insert(0, first);
    (signers, log, state, fork)
}

async fn code_of(conn: &Relay, request: Request) -> Option<ErrorCode> {
    match conn.request(&request).await {
        Ok(_) => None,
        Err(NetError::Relay { code, .. }) => Some(code),
        Err(e) => panic!("{e}"),
    }
}

/// The relay's rules for logs sent back: an account log is taken whole,
/// from anyone, when what the relay holds is where it begins, and then
/// counts against no creation limit; one that begins otherwise is refused,
/// and every answer but a log taken counts. An access log's entries may be
/// any of the account's devices', and no other account's device's (the
/// relay's first gate; the owner-only rule would refuse them next).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_sent_back_is_taken_only_where_the_relays_begins_it() {
    let relay = TestRelay::start().await;
    let conn = Relay::connect(&relay.addr(), relay.handle.fingerprint)
        .await
        .unwrap();
    let (mine, log, state, fork) = account_of(3);
    let create = |entries: &[Signed]| Request::CreateAccount {
        entries: entries.to_vec(),
    };
    // A new account, then its log sent back longer, twice: taken, and
    // free of the limit on accounts made per connection (4).
    assert_eq!(code_of(&conn, create(&log[..1])).await, None);
    assert_eq!(code_of(&conn, create(&log[..2])).await, None);
    assert_eq!(code_of(&conn, create(&log)).await, None);
    // What the relay holds already (another device sent it back first),
    // whole or in part: Ok, and it counts.
    assert_eq!(code_of(&conn, create(&log[..2])).await, None);
    assert_eq!(code_of(&conn, create(&log)).await, None);
    // Another second entry: two histories, refused; and it counts.
    let forked = [log[0].clone(), fork];
    assert_eq!(
        code_of(&conn, create(&forked)).await,
        Some(ErrorCode::Conflict)
    );
    assert_eq!(code_of(&conn, create(&log)).await, Some(ErrorCode::Limited));

    conn.authenticate(&mine[2], Some(state.id)).await.unwrap();
    match conn
        .request(&Request::GetAccount {
            account: state.id,
            from: 0,
        })
        .await
        .unwrap()
    {
        Response::Log { entries } => assert_eq!(entries, log),
        r => panic!("{r:?}"),
    }
    // Another device of this account signed it: taken.
    let (doc, entry) = doc_genesis(&state, &mine[0]);
    let append = |doc, entry: &Signed| Request::AppendAccess {
        doc,
        entries: vec![entry.clone()],
    };
    assert_eq!(code_of(&conn, append(doc, &entry)).await, None);

    // Another account's device, for its own account or this one: refused.
    let other = Relay::connect(&relay.addr(), relay.handle.fingerprint)
        .await
        .unwrap();
    let (theirs, their_log, their_state, _) = account_of(1);
    assert_eq!(code_of(&other, create(&their_log)).await, None);
    for owner in [&their_state, &state] {
        let (doc, entry) = doc_genesis(owner, &theirs[0]);
        assert_eq!(
            code_of(&conn, append(doc, &entry)).await,
            Some(ErrorCode::Forbidden)
        );
    }
    relay.stop().await;
}

/// Dr. Chen shares a case with Dr. Rivera, then with Dr. Osei after the
/// copy; Dr. Rivera's laptop fetched that entry. Restored, the relay holds
/// fewer of that case's access entries than the laptop has seen, entries
/// only Dr. Chen's devices can send back. The laptop holds that case back,
/// named, and goes on: its own note reaches its phone, and the note it
/// wrote on her case waits. Once Dr. Chen has synced, the case is whole
/// again, the laptop's sync is clean, and the note reaches her.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleagues_access_entries_the_relay_lost_hold_back_only_her_case() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let mut laptop = init(&at("laptop"), &relay, "Dr. Rivera");
    let own = case_with_a_plan(&mut laptop, "walk daily");
    let mut phone = pair(&mut laptop, &at("phone"), &relay).await;
    let mut chen = init(&at("chen"), &relay, "Dr. Chen");
    let mut osei = init(&at("osei"), &relay, "Dr. Osei");
    for home in [&mut laptop, &mut phone, &mut chen, &mut osei] {
        sync(home).await;
    }
    let hers = case_with_a_plan(&mut chen, "her client");
    befriend(&mut chen, "Dr. Rivera", &laptop.account_id());
    share_case(&mut chen, &hers, "Dr. Rivera", "write", true).await;
    sync(&mut laptop).await;
    let (relay, copy) = relay.copy().await;
    befriend(&mut chen, "Dr. Osei", &osei.account_id());
    share_case(&mut chen, &hers, "Dr. Osei", "read", true).await;
    sync(&mut laptop).await;

    let relay = relay.restore(copy.path()).await;
    laptop
        .add_note(&own, free_note("after the restore"))
        .unwrap();
    let on_hers = stored_envelopes(&relay, &hers).len();
    laptop
        .add_note(&hers, free_note("Dr. Rivera's note on her case"))
        .unwrap();
    let r = try_sync(&mut laptop)
        .await
        .expect("the rest of the round goes on");
    let [refused] = &r.refused[..] else {
        panic!("{r:?}")
    };
    assert!(
        refused.doc == hers && refused.reason.contains("the case waits"),
        "{refused:?}"
    );
    sync(&mut phone).await;
    assert_eq!(
        phone.list_notes(&own).unwrap().len(),
        2,
        "the plan and the note"
    );
    // Nothing of the case held back went, early or in a round.
    try_sync(&mut laptop).await.expect("again");
    assert_eq!(stored_envelopes(&relay, &hers).len(), on_hers);

    sync(&mut chen).await;
    assert_clean(&sync(&mut laptop).await);
    assert_eq!(plan_of(&mut laptop, &hers), "her client");
    sync(&mut chen).await;
    assert!(
        notes_of(&mut chen, &hers)
            .iter()
            .any(|n| n == "Dr. Rivera's note on her case"),
        "the note waited, and went"
    );
    relay.stop().await;
}
