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
}

impl Case {
    fn new() -> Case {
        let laptop = DeviceSigner::generate();
        let (g, key) = account::genesis(&laptop, &DhSecret::generate(), 1);
        let mut rivera = AccountState::from_genesis(&g).unwrap();
        let phone = DeviceSigner::generate();
        let info = DeviceInfo {
            id: phone.device_id(),
            dh: DhSecret::generate().public(),
            kind: DeviceKind::Device,
        };
        let added = account::add_device(&rivera, &laptop, &key, info, 2).unwrap();
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
    let by_phone = c.add_osei(false);
    assert_eq!(
        granted_by(std::slice::from_ref(&by_phone), &c.rivera.id, &of, None),
        vec![c.osei.id]
    );
    // A member already is left to stand (a colleague whose terms it changed).
    let already = [c.osei.id];
    assert!(
        granted_by(
            std::slice::from_ref(&by_phone),
            &c.rivera.id,
            &of,
            Some(&already)
        )
        .is_empty()
    );
    // Granted again by the laptop after: the laptop's grant decides.
    let by_laptop = c.add_osei(true);
    assert!(granted_by(&[by_phone.clone(), by_laptop], &c.rivera.id, &of, None).is_empty());
    // Signed at a shorter log than the device counts from: it stands.
    let late = BTreeMap::from([(c.phone.device_id(), c.rivera.len + 1)]);
    assert!(granted_by(&[by_phone], &c.rivera.id, &late, None).is_empty());
}

#[test]
fn a_colleague_waits_until_the_owner_undid_what_the_phone_did() {
    let mut c = Case::new();
    let of = BTreeMap::from([(c.phone.device_id(), 5)]);
    let turn = c.log.len();
    c.add_osei(false);
    c.rotate(false);
    assert!(!undone_in(&c.log[turn..], &c.state(), &of));
    // Removed, but the key the phone made is still the newest.
    c.remove_osei();
    assert!(!undone_in(&c.log[turn..], &c.state(), &of));
    c.rotate(true);
    assert!(undone_in(&c.log[turn..], &c.state(), &of));
    // Moved on without ending the share: still waits.
    let mut c = Case::new();
    let of = BTreeMap::from([(c.phone.device_id(), 5)]);
    let turn = c.log.len();
    c.add_osei(false);
    c.rotate(true);
    assert!(!undone_in(&c.log[turn..], &c.state(), &of));
}
