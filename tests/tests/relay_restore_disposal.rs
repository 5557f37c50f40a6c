//! A relay restored from a copy older than a case's disposal: the owner's
//! decision stands. Every device that carried out the disposal keeps its
//! signed entry and gives it back when the relay lacks it, so the relay
//! deletes the case again, a device that never saw the disposal deletes
//! it, and a device paired afterwards is never served it.

use casebook::Home;
use casebook::net::{NetError, Relay};
use casebook_shared::access::{self, DocEntry, DocOp};
use casebook_shared::account::{self, AccountState};
use casebook_shared::crypto::{self, DeviceSigner, DhSecret};
use casebook_shared::frames::{ErrorCode, Request, Response};
use casebook_shared::ids::{AccountId, DocId, Hash};
use casebook_shared::signed::Signed;
use casebook_tests::*;

/// How many envelopes and access entries of `doc` the relay's database
/// holds (the relay stopped).
fn stored(data: &std::path::Path, doc: &DocId) -> (i64, i64) {
    let db = rusqlite::Connection::open(data.join("relay.db")).unwrap();
    let count = |table: &str| -> i64 {
        db.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE doc = ?1"),
            [&doc.0[..]],
            |r| r.get(0),
        )
        .unwrap()
    };
    (count("envelopes"), count("access_entries"))
}

fn holds(home: &Home, case: &DocId) -> bool {
    home.list_cases(true).unwrap().iter().any(|c| c.id == *case)
}

fn sorted(docs: [DocId; 2]) -> Vec<DocId> {
    let mut docs = docs.to_vec();
    docs.sort();
    docs
}

/// The document that holds a case's psychotherapy notes, disposed of with
/// it.
fn private_of(home: &Home, case: &DocId) -> DocId {
    let c = home.list_cases(true).unwrap();
    let c = c.iter().find(|c| c.id == *case).unwrap();
    c.summary.private_doc.unwrap()
}

/// The copy holds the case, shared with Dr. Chen; the laptop disposes of
/// it after the copy was taken, and every device deletes it. Restored, the
/// relay holds the case again. Dr. Chen's device, first to sync, gives the
/// disposal back (any device that took it may: it proves itself); the
/// relay deletes the case again, and a tablet paired afterwards never
/// sees it. The laptop gives back only the disposal of the case's
/// psychotherapy notes, which Dr. Chen never read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disposal_the_restore_undid_is_given_back_by_a_device_that_took_it() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut laptop, _) = init_with_words(&dir.path().join("laptop"), &relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut chen = init(&dir.path().join("chen"), &relay, "Dr. Chen");
    sync(&mut chen).await;
    let chen_account = chen.account_id();
    befriend(&mut laptop, "Dr. Chen", &chen_account);
    share_case(&mut laptop, &case, "Dr. Chen", "read", true).await;
    sync(&mut chen).await;
    assert!(holds(&chen, &case));
    let private = private_of(&laptop, &case);

    let (relay, copy) = relay.copy().await;

    laptop.dispose_case(&case, true).unwrap();
    sync(&mut laptop).await;
    sync(&mut laptop).await;
    sync(&mut chen).await;
    assert!(!holds(&laptop, &case) && !holds(&chen, &case));

    let relay = relay.restore(copy.path()).await;
    let back = sync(&mut chen).await;
    assert_eq!(back.disposals_healed, vec![case], "{back:?}");
    assert!(
        chen.trail()
            .entries()
            .unwrap()
            .iter()
            .any(|r| r.what.contains("lacked this case's disposal") && r.case == Some(case)),
        "the trail says so"
    );
    let again = sync(&mut laptop).await;
    assert_eq!(again.disposals_healed, vec![private], "{again:?}");
    assert!(sync(&mut laptop).await.disposals_healed.is_empty());
    assert!(sync(&mut chen).await.disposals_healed.is_empty());

    let mut tablet = pair(&mut laptop, &dir.path().join("tablet"), &relay).await;
    sync(&mut tablet).await;
    assert!(
        !holds(&tablet, &case),
        "a device paired since is not served it"
    );
    let data = relay.stop().await;
    for doc in [case, private] {
        assert_eq!(stored(data.path(), &doc), (0, 1), "the disposal alone");
    }
}

/// Dr. Rivera's laptop and tablet, and Dr. Chen, whom the laptop knows; a
/// copy of the relay's data taken before the case was opened, and the
/// case (with its psychotherapy notes) on both of Dr. Rivera's devices
/// since; the relay goes on.
struct NewerThanTheCopy {
    relay: TestRelay,
    copy: tempfile::TempDir,
    dir: tempfile::TempDir,
    laptop: Home,
    tablet: Home,
    chen: Home,
    case: DocId,
    private: DocId,
}

async fn newer_than_the_copy() -> NewerThanTheCopy {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut laptop, _) = init_with_words(&dir.path().join("laptop"), &relay, "Dr. Rivera");
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, &dir.path().join("tablet"), &relay).await;
    sync(&mut tablet).await;
    let mut chen = init(&dir.path().join("chen"), &relay, "Dr. Chen");
    sync(&mut chen).await;
    befriend(&mut laptop, "Dr. Chen", &chen.account_id());
    let (relay, copy) = relay.copy().await;
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    sync(&mut tablet).await;
    assert!(holds(&tablet, &case));
    let private = private_of(&laptop, &case);
    NewerThanTheCopy {
        relay,
        copy,
        dir,
        laptop,
        tablet,
        chen,
        case,
        private,
    }
}

/// The copy is older than the case. The tablet took the case and then
/// slept through its disposal. Restored, the relay holds nothing of it;
/// the tablet, first to sync, sends it back whole, as it would any case
/// its account owns that the relay lacks. The laptop, which disposed of
/// it, gives the disposal back; the tablet then deletes the case, and a
/// phone paired afterwards never sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_sent_back_by_a_device_that_never_saw_its_disposal_is_disposed_of_again() {
    let NewerThanTheCopy {
        relay,
        copy,
        dir,
        mut laptop,
        mut tablet,
        case,
        private,
        ..
    } = newer_than_the_copy().await;
    laptop.dispose_case(&case, true).unwrap();
    sync(&mut laptop).await;
    sync(&mut laptop).await;
    assert!(!holds(&laptop, &case));

    let relay = relay.restore(copy.path()).await;
    let sent = sync(&mut tablet).await;
    assert!(sent.access_healed.contains(&case), "{sent:?}");
    assert!(holds(&tablet, &case));
    let back = sync(&mut laptop).await;
    assert_eq!(back.disposals_healed, sorted([case, private]), "{back:?}");
    sync(&mut tablet).await;
    assert!(!holds(&tablet, &case), "the tablet deletes it");
    assert!(
        tablet
            .trail()
            .entries()
            .unwrap()
            .iter()
            .any(|r| r.what.contains("disposed of by") && r.case == Some(case)),
        "{:?}",
        tablet.trail().entries().unwrap()
    );

    let mut phone = pair(&mut laptop, &dir.path().join("phone"), &relay).await;
    sync(&mut phone).await;
    assert!(!holds(&phone, &case));
    for home in [&mut laptop, &mut tablet] {
        let quiet = sync(home).await;
        assert!(
            quiet.disposals_healed.is_empty() && quiet.access_healed.is_empty(),
            "{quiet:?}"
        );
    }
    let data = relay.stop().await;
    for doc in [case, private] {
        assert_eq!(stored(data.path(), &doc), (0, 1), "the disposal alone");
    }
}

/// As above, but the laptop syncs first: the relay lists nothing of the
/// case, and the laptop, its owner's, gives the disposal back all the
/// same. The tablet then takes it rather than sending the case back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disposal_of_a_case_the_restore_lost_whole_is_given_back_by_its_owner() {
    let NewerThanTheCopy {
        relay,
        copy,
        dir,
        mut laptop,
        mut tablet,
        case,
        private,
        ..
    } = newer_than_the_copy().await;
    laptop.dispose_case(&case, true).unwrap();
    sync(&mut laptop).await;
    sync(&mut laptop).await;

    let relay = relay.restore(copy.path()).await;
    let back = sync(&mut laptop).await;
    assert_eq!(back.disposals_healed, sorted([case, private]), "{back:?}");
    let took = sync(&mut tablet).await;
    assert!(!took.access_healed.contains(&case), "{took:?}");
    assert!(!holds(&tablet, &case));
    let mut phone = pair(&mut laptop, &dir.path().join("phone"), &relay).await;
    sync(&mut phone).await;
    assert!(!holds(&phone, &case));
    relay.stop().await;
}

/// The copy holds the case. The laptop disposes of it; the tablet sleeps
/// through that. Restored, the relay holds the case again, and the tablet
/// shares it with Dr. Chen and then Dr. Lee: Dr. Chen's device takes two
/// access entries past where the disposal was signed. The laptop gives
/// the disposal back; the relay's log of the case is then shorter than
/// Dr. Chen's, which would be refused as a rollback, but its last entry
/// is the disposal: Dr. Chen's device and the tablet delete the case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_took_more_of_a_case_than_its_disposal_deletes_it() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut laptop, _) = init_with_words(&dir.path().join("laptop"), &relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, &dir.path().join("tablet"), &relay).await;
    sync(&mut tablet).await;
    let mut chen = init(&dir.path().join("chen"), &relay, "Dr. Chen");
    sync(&mut chen).await;
    let mut lee = init(&dir.path().join("lee"), &relay, "Dr. Lee");
    sync(&mut lee).await;
    befriend(&mut tablet, "Dr. Chen", &chen.account_id());
    befriend(&mut tablet, "Dr. Lee", &lee.account_id());

    let (relay, copy) = relay.copy().await;

    laptop.dispose_case(&case, true).unwrap();
    sync(&mut laptop).await;
    sync(&mut laptop).await;

    let relay = relay.restore(copy.path()).await;
    sync(&mut tablet).await;
    share_case(&mut tablet, &case, "Dr. Chen", "read", true).await;
    share_case(&mut tablet, &case, "Dr. Lee", "read", true).await;
    sync(&mut chen).await;
    assert!(holds(&chen, &case));

    let back = sync(&mut laptop).await;
    assert!(back.disposals_healed.contains(&case), "{back:?}");
    let took = sync(&mut chen).await;
    assert_clean(&took);
    assert!(!holds(&chen, &case), "Dr. Chen's device deletes it");
    sync(&mut tablet).await;
    assert!(!holds(&tablet, &case), "so does the tablet");
    sync(&mut lee).await;
    assert!(!holds(&lee, &case));
    relay.stop().await;
}

/// The copy is older than the case and its share with Dr. Chen, so the
/// restored relay never knew Dr. Chen as a reader of it. Dr. Chen's device
/// slept through the disposal. The laptop gives the disposal back naming
/// who could read the case, and the relay lists the disposal to Dr. Chen,
/// whose device deletes the case (rather than taking a case no longer
/// listed for a share that ended, and keeping it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleague_the_restored_relay_never_knew_learns_of_the_disposal() {
    // The homes live in `_dir`: kept to the end.
    let NewerThanTheCopy {
        relay,
        copy,
        dir: _dir,
        mut laptop,
        mut chen,
        case,
        private,
        ..
    } = newer_than_the_copy().await;
    share_case(&mut laptop, &case, "Dr. Chen", "read", true).await;
    sync(&mut chen).await;
    assert!(holds(&chen, &case));
    laptop.dispose_case(&case, true).unwrap();
    sync(&mut laptop).await;
    sync(&mut laptop).await;

    let relay = relay.restore(copy.path()).await;
    let back = sync(&mut laptop).await;
    assert_eq!(back.disposals_healed, sorted([case, private]), "{back:?}");
    let took = sync(&mut chen).await;
    assert_clean(&took);
    assert!(!holds(&chen, &case), "Dr. Chen's device deletes it");
    assert!(
        chen.trail()
            .entries()
            .unwrap()
            .iter()
            .any(|r| r.what.contains("dispos") && r.case == Some(case)),
        "Dr. Chen's trail says so"
    );
    relay.stop().await;
}

/// The laptop disposes of a case the copy is older than, and the relay is
/// restored before the disposal reaches it: the relay lacks the case
/// whole, and the disposal cannot follow entries it no longer holds. The
/// laptop deletes the case and gives the disposal back alone, rather than
/// refusing every listing that lacks an owned case; the tablet, which
/// holds the case, then deletes it rather than sending it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disposal_not_yet_sent_of_a_case_the_restore_lost_goes_alone() {
    // The homes live in `_dir`: kept to the end.
    let NewerThanTheCopy {
        relay,
        copy,
        dir: _dir,
        mut laptop,
        mut tablet,
        case,
        private,
        ..
    } = newer_than_the_copy().await;
    laptop.dispose_case(&case, true).unwrap();

    let relay = relay.restore(copy.path()).await;
    let back = sync(&mut laptop).await;
    assert_eq!(back.disposals_healed, sorted([case, private]), "{back:?}");
    assert!(!holds(&laptop, &case));
    let took = sync(&mut tablet).await;
    assert!(!took.access_healed.contains(&case), "{took:?}");
    assert!(!holds(&tablet, &case));
    let quiet = sync(&mut laptop).await;
    assert!(quiet.disposals_healed.is_empty(), "{quiet:?}");
    let data = relay.stop().await;
    for doc in [case, private] {
        assert_eq!(stored(data.path(), &doc), (0, 1), "the disposal alone");
    }
}

/// The tablet disposes of the case, and is retired later: its signature
/// no longer counts anywhere (a stolen device could sign a disposal dated
/// back), and a retired device's disposal looks like a stolen one's, so
/// no device signs it again on its own. Restored from a copy older than
/// both, the relay holds the case again. The laptop, which carried the
/// disposal out, cannot give it back, and says so; the case stays deleted
/// there. A phone paired afterwards is served the case, and the person
/// disposes of it again from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disposal_whose_device_was_retired_is_not_given_back() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut laptop, _) = init_with_words(&dir.path().join("laptop"), &relay, "Dr. Rivera");
    let case = case_with_a_plan(&mut laptop, "walk daily");
    sync(&mut laptop).await;
    let mut tablet = pair(&mut laptop, &dir.path().join("tablet"), &relay).await;
    sync(&mut tablet).await;

    let (relay, copy) = relay.copy().await;

    tablet.dispose_case(&case, true).unwrap();
    sync(&mut tablet).await;
    sync(&mut tablet).await;
    sync(&mut laptop).await;
    assert!(!holds(&laptop, &case));
    let conn = laptop.connect().await.unwrap();
    laptop.revoke(&conn, &tablet.device_id()).await.unwrap();
    laptop.sync(&conn, &mut |_| {}).await.unwrap();
    conn.close().await;

    let relay = relay.restore(copy.path()).await;
    let back = sync(&mut laptop).await;
    assert!(back.disposals_healed.is_empty(), "{back:?}");
    assert!(
        laptop
            .trail()
            .entries()
            .unwrap()
            .iter()
            .any(|r| r.what.contains("no longer counts") && r.case == Some(case)),
        "the trail says so"
    );
    for _ in 0..2 {
        assert!(sync(&mut laptop).await.disposals_healed.is_empty());
        assert!(
            !holds(&laptop, &case),
            "deleted here, as the person decided"
        );
    }
    let mut phone = pair(&mut laptop, &dir.path().join("phone"), &relay).await;
    sync(&mut phone).await;
    assert!(holds(&phone, &case), "the relay serves it again");
    phone.dispose_case(&case, true).unwrap();
    sync(&mut phone).await;
    sync(&mut phone).await;
    let mut spare = pair(&mut laptop, &dir.path().join("spare"), &relay).await;
    sync(&mut spare).await;
    assert!(!holds(&spare, &case) && !holds(&phone, &case));
    relay.stop().await;
}

/// A disposal of `doc` at `seq`, said to be `account`'s, signed by
/// `signer` at `account_len` entries of that account's log.
fn disposal(
    doc: DocId,
    seq: u64,
    account: &AccountState,
    account_len: u64,
    signer: &DeviceSigner,
) -> Signed {
    let entry = DocEntry {
        doc,
        seq,
        prev: Some(Hash([seq as u8; 32])),
        at: 2,
        account: account.id,
        account_len,
        op: DocOp::Dispose,
    };
    Signed::sign(signer, access::SIG_LABEL, &entry)
}

async fn answer(
    conn: &Relay,
    doc: DocId,
    entry: &Signed,
    readers: &[AccountId],
) -> Result<Vec<Signed>, ErrorCode> {
    let request = Request::RestoreDisposal {
        doc,
        entry: entry.clone(),
        readers: readers.to_vec(),
    };
    match conn.request(&request).await {
        Ok(Response::Log { entries }) => Ok(entries),
        Ok(r) => panic!("{r:?}"),
        Err(NetError::Relay { code, .. }) => Err(code),
        Err(e) => panic!("{e}"),
    }
}

/// The relay's rules for a disposal given back: taken from any signed-in
/// device, since it proves itself, only where it is a disposal of that
/// document signed by a device of its owner that the owner has not
/// revoked; taken over whatever log is held, and for a document the relay
/// does not hold from the owner's devices alone; once one is kept, that
/// one stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disposal_given_back_is_taken_only_from_its_owner() {
    let relay = TestRelay::start().await;
    let addr = relay.addr();
    let connect = || Relay::connect(&addr, relay.handle.fingerprint);
    // The owner: a laptop, and a tablet it revokes.
    let laptop = DeviceSigner::generate();
    let (genesis, key) = account::genesis(&laptop, &DhSecret::generate(), 1);
    let mut owner = AccountState::from_genesis(&genesis).unwrap();
    let tablet = DeviceSigner::generate();
    let info = account::DeviceInfo {
        id: tablet.device_id(),
        dh: DhSecret::generate().public(),
        kind: account::DeviceKind::Device,
    };
    let add = account::add_device(&owner, &laptop, &key, info, 1).unwrap();
    owner.apply(&add).unwrap();
    let at_two = owner.clone();
    let (revoke, _) = account::revoke_device(&owner, &laptop, &key, tablet.device_id(), 2).unwrap();
    owner.apply(&revoke).unwrap();
    let own = connect().await.unwrap();
    own.request(&Request::CreateAccount {
        entries: vec![genesis, add, revoke],
    })
    .await
    .unwrap();
    own.authenticate(&laptop, Some(owner.id)).await.unwrap();
    let (doc, first) = doc_genesis(&owner, &laptop);
    own.request(&Request::AppendAccess {
        doc,
        entries: vec![first.clone()],
    })
    .await
    .unwrap();

    // Someone else, signed in as a device of an account of their own.
    let mallory = DeviceSigner::generate();
    let (their_genesis, _) = account::genesis(&mallory, &DhSecret::generate(), 1);
    let theirs = AccountState::from_genesis(&their_genesis).unwrap();
    let other = connect().await.unwrap();
    other
        .request(&Request::CreateAccount {
            entries: vec![their_genesis],
        })
        .await
        .unwrap();
    other.authenticate(&mallory, Some(theirs.id)).await.unwrap();

    let refused = [
        // Not a disposal.
        (first.clone(), ErrorCode::Invalid),
        // Said to be the owner's, signed by another account's device.
        (disposal(doc, 1, &owner, 3, &mallory), ErrorCode::Invalid),
        // Their own, of a document they do not own.
        (disposal(doc, 1, &theirs, 1, &mallory), ErrorCode::Forbidden),
        // The revoked tablet's, dated back to when it was active.
        (disposal(doc, 1, &at_two, 2, &tablet), ErrorCode::Forbidden),
    ];
    for (entry, code) in &refused {
        assert_eq!(
            answer(&other, doc, entry, &[]).await,
            Err(*code),
            "{entry:?}"
        );
    }
    match own.request(&Request::GetAccess { doc, from: 0 }).await {
        Ok(Response::Log { entries }) => assert_eq!(entries, vec![first.clone()]),
        r => panic!("{r:?}"),
    }

    // The owner's laptop's, given back by someone else: taken.
    let gone = disposal(doc, 1, &owner, 3, &laptop);
    assert_eq!(
        answer(&other, doc, &gone, &[]).await,
        Ok(vec![gone.clone()])
    );
    // Given back again, or another disposal: the one kept stands.
    let later = disposal(doc, 5, &owner, 3, &laptop);
    assert_eq!(answer(&own, doc, &later, &[]).await, Ok(vec![gone.clone()]));
    for from in [0, 1, 7] {
        match own.request(&Request::GetAccess { doc, from }).await {
            Ok(Response::Log { entries }) => assert_eq!(entries, vec![gone.clone()]),
            r => panic!("{r:?}"),
        }
    }
    // A document the relay never held: taken from its owner's devices
    // only, and listed to its owner and to the readers they name.
    let unknown = DocId(crypto::random_bytes());
    let gone = disposal(unknown, 4, &owner, 3, &laptop);
    assert_eq!(
        answer(&other, unknown, &gone, &[]).await,
        Err(ErrorCode::Forbidden)
    );
    assert_eq!(
        answer(&own, unknown, &gone, &[theirs.id]).await,
        Ok(vec![gone.clone()])
    );
    match other.request(&Request::ListDocs { since: 0 }).await {
        Ok(Response::Docs { docs, .. }) => assert!(docs.iter().any(|h| h.doc == unknown)),
        r => panic!("{r:?}"),
    }
    match own.request(&Request::ListDocs { since: 0 }).await {
        Ok(Response::Docs { docs, .. }) => {
            let listed = docs.iter().find(|h| h.doc == unknown).expect("listed");
            assert_eq!(listed.access_len, 5);
            assert_eq!(listed.access_head, gone.hash(access::HASH_LABEL));
        }
        r => panic!("{r:?}"),
    }
    relay.stop().await;
}
