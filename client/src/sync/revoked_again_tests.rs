use casebook_shared::access::{self, Role};
use casebook_shared::account::{self, AccountState, DeviceInfo, DeviceKind};
use casebook_shared::crypto::{DeviceSigner, DhSecret, SecretKey};

use super::*;

/// Dr. Rivera's account (laptop and phone), Dr. Osei's, and a case of
/// Rivera's whose access log the test writes entry by entry.
struct Case {
    laptop: DeviceSigner,
    phone: DeviceSigner,
    rivera: AccountState,
    osei: AccountState,
    doc: DocId,
    log: Vec<Signed>,
    key: SecretKey,
    account_key: DhSecret,
}

impl Case {
    fn new() -> Case {
        let laptop = DeviceSigner::generate();
        let (g, account_key) = account::genesis(&laptop, &DhSecret::generate(), 1);
        let mut rivera = AccountState::from_genesis(&g).unwrap();
        let phone = DeviceSigner::generate();
        let info = DeviceInfo {
            id: phone.device_id(),
            dh: DhSecret::generate().public(),
            kind: DeviceKind::Device,
        };
        let added = account::add_device(&rivera, &laptop, &account_key, info, 2).unwrap();
        rivera.apply(&added).unwrap();
        let (o, _) = account::genesis(&DeviceSigner::generate(), &DhSecret::generate(), 1);
        let osei = AccountState::from_genesis(&o).unwrap();
        let doc = DocId::random();
        let key = SecretKey::random();
        let op = DocOp::Genesis {
            key: access::key_envelope(&doc, 0, &key, &rivera).unwrap(),
        };
        let mut case = Case {
            laptop,
            phone,
            rivera,
            osei,
            doc,
            log: Vec::new(),
            key,
            account_key,
        };
        case.sign(true, op);
        case
    }

    fn state(&self) -> DocState {
        DocState::verify_log(&self.log, |a| {
            [&self.rivera, &self.osei].into_iter().find(|s| s.id == *a)
        })
        .unwrap()
    }

    /// Appends `op`, signed by the laptop or the phone.
    fn sign(&mut self, by_laptop: bool, op: DocOp) -> Signed {
        let (seq, prev) = match self.log.is_empty() {
            true => (0, None),
            false => (self.log.len() as u64, Some(self.state().head)),
        };
        let entry = DocEntry {
            doc: self.doc,
            seq,
            prev,
            at: 3,
            account: self.rivera.id,
            account_len: self.rivera.len,
            op,
        };
        let signer = if by_laptop { &self.laptop } else { &self.phone };
        let signed = Signed::sign(signer, SIG_LABEL, &entry);
        self.log.push(signed.clone());
        signed
    }

    fn add_osei(&mut self, by_laptop: bool) -> Signed {
        let epoch = self.state().epoch;
        let op = DocOp::AddMember {
            member: self.osei.id,
            role: Role::Read,
            expires: None,
            details: access::seal_details(&self.doc, epoch, &self.key, b"{}"),
            key: access::key_envelope(&self.doc, epoch, &self.key, &self.osei).unwrap(),
        };
        self.sign(by_laptop, op)
    }

    /// The laptop revokes the phone in Rivera's account log.
    fn revoke_phone(&mut self) {
        let phone = self.phone.device_id();
        let (e, key) =
            account::revoke_device(&self.rivera, &self.laptop, &self.account_key, phone, 4)
                .unwrap();
        self.rivera.apply(&e).unwrap();
        self.account_key = key;
    }

    fn remove_osei(&mut self) -> Signed {
        let member = self.osei.id;
        self.sign(true, DocOp::RemoveMember { member })
    }

    fn rotate(&mut self, by_laptop: bool) -> Signed {
        let st = self.state();
        let new = SecretKey::random();
        let epoch = st.epoch + 1;
        let keys = [&self.rivera, &self.osei]
            .into_iter()
            .filter(|a| st.members.contains_key(&a.id))
            .map(|a| access::key_envelope(&self.doc, epoch, &new, a).unwrap())
            .collect();
        let previous = access::seal_previous(&self.doc, epoch, &new, &self.key);
        self.key = new;
        self.sign(
            by_laptop,
            DocOp::Rotate {
                epoch,
                keys,
                previous,
            },
        )
    }
}

#[test]
fn a_share_the_phone_granted_is_found_by_its_last_grant() {
    let mut c = Case::new();
    let of = BTreeMap::from([(c.phone.device_id(), 0)]);
    let owner = c.rivera.id;
    let by_phone = c.add_osei(false);
    let one = std::slice::from_ref(&by_phone);
    let undo = undo_of(one, &owner, &of, &[]);
    assert_eq!(undo.members, vec![c.osei.id]);
    assert!(undo.rotate);
    // A member already keeps the share, on the changed terms; the key the
    // phone handed out moves on all the same.
    let undo = undo_of(one, &owner, &of, &[c.osei.id]);
    assert!(undo.members.is_empty() && undo.rotate);
    // Ended and granted again by the laptop after: the laptop's grant
    // decides.
    let removed = c.remove_osei();
    let rotated = c.rotate(true);
    let by_laptop = c.add_osei(true);
    let undo = undo_of(
        &[by_phone.clone(), removed, rotated, by_laptop],
        &owner,
        &of,
        &[],
    );
    assert!(undo.members.is_empty());
    // Signed at a shorter log than the device counts from: it stands.
    let late = BTreeMap::from([(c.phone.device_id(), c.rivera.len + 1)]);
    assert_eq!(undo_of(one, &owner, &late, &[]), Undo::default());
    // A rotation the phone signed: the key moves on.
    let rotated = c.rotate(false);
    let undo = undo_of(&[rotated], &owner, &of, &[]);
    assert!(undo.members.is_empty() && undo.rotate);
    // What the laptop signed is not undone.
    let rotated = c.rotate(true);
    assert!(!undo_of(&[rotated], &owner, &of, &[]).needed());
}

/// Whether a colleague's device waits on what `c`'s log holds past `from`.
fn waits(c: &Case, from: usize, already: &[AccountId]) -> bool {
    let of = BTreeMap::from([(c.phone.device_id(), 0)]);
    !undone_in(&c.log[from..], &c.state(), &of, already, &c.rivera)
}

#[test]
fn a_colleague_waits_until_the_owner_undid_what_the_phone_did() {
    let mut c = Case::new();
    let turn = c.log.len();
    c.add_osei(false);
    c.rotate(false);
    c.revoke_phone();
    assert!(waits(&c, turn, &[]));
    // Removed, but the key the phone made is still the newest.
    c.remove_osei();
    assert!(waits(&c, turn, &[]));
    c.rotate(true);
    assert!(!waits(&c, turn, &[]));
    // Moved on without ending the share: still waits; unless the member
    // held the case before (the phone changed the terms), which stand.
    let mut c = Case::new();
    let turn = c.log.len();
    c.add_osei(false);
    c.revoke_phone();
    c.rotate(true);
    assert!(waits(&c, turn, &[]));
    assert!(!waits(&c, turn, &[c.osei.id]));
    // Ended, and the key moved on, but to the account key the phone held
    // (the desk, never told of the revocation): still waits.
    let mut c = Case::new();
    let turn = c.log.len();
    c.add_osei(false);
    c.remove_osei();
    c.rotate(true);
    c.revoke_phone();
    assert!(waits(&c, turn, &[]));
    // Signed at a shorter log than the device counts from: not waited on.
    let mut c = Case::new();
    let late = BTreeMap::from([(c.phone.device_id(), c.rivera.len + 1)]);
    let turn = c.log.len();
    c.add_osei(false);
    assert!(undone_in(&c.log[turn..], &c.state(), &late, &[], &c.rivera));
}

#[test]
fn the_members_before_are_those_before_the_phones_first_entry() {
    let mut c = Case::new();
    let of = BTreeMap::from([(c.phone.device_id(), 0)]);
    let accounts = BTreeMap::from([(c.rivera.id, c.rivera.clone()), (c.osei.id, c.osei.clone())]);
    c.add_osei(true);
    assert!(
        members_before(&c.log, &of, &accounts).is_empty(),
        "no entry of the phone's"
    );
    c.remove_osei();
    c.rotate(true);
    c.add_osei(false);
    assert!(!members_before(&c.log, &of, &accounts).contains(&c.osei.id));
    let mut c = Case::new();
    let of = BTreeMap::from([(c.phone.device_id(), 0)]);
    let accounts = BTreeMap::from([(c.rivera.id, c.rivera.clone()), (c.osei.id, c.osei.clone())]);
    c.add_osei(true);
    c.rotate(false);
    assert!(members_before(&c.log, &of, &accounts).contains(&c.osei.id));
}
