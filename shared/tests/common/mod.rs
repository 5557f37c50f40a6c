//! Signers and accounts the signed-log tests share: a small pool of
//! deterministic devices (so that signers, added and revoked devices
//! collide), and two real accounts to check access logs against.

#![allow(dead_code)] // each test file uses part of it

use casebook_shared::account::{self, AccountState, DeviceInfo, DeviceKind};
use casebook_shared::crypto::{DeviceSigner, DhSecret};

/// A small pool of devices, so that signers, added and revoked devices collide.
pub const POOL: usize = 6;

pub fn pool_signer(i: usize) -> DeviceSigner {
    DeviceSigner::from_seed(&[10 + (i % POOL) as u8; 32])
}

pub fn pool_dh(i: usize) -> DhSecret {
    DhSecret::from_bytes([20 + (i % POOL) as u8; 32])
}

pub fn pool_info(i: usize, paper: bool) -> DeviceInfo {
    DeviceInfo {
        id: pool_signer(i).device_id(),
        dh: pool_dh(i).public(),
        kind: if paper {
            DeviceKind::Paper
        } else {
            DeviceKind::Device
        },
    }
}

pub struct Fixture {
    pub acct: AccountState,
    pub other: AccountState,
    pub account_key: DhSecret,
}

/// Account A: devices 0 and 1, then device 1 revoked. Account B: device 2.
pub fn fixture() -> Fixture {
    let (g, k0) = account::genesis(&pool_signer(0), &pool_dh(0), 1);
    let mut acct = AccountState::from_genesis(&g).unwrap();
    let add = account::add_device(&acct, &pool_signer(0), &k0, pool_info(1, false), 2).unwrap();
    acct.apply(&add).unwrap();
    let (rev, k1) =
        account::revoke_device(&acct, &pool_signer(0), &k0, pool_signer(1).device_id(), 3).unwrap();
    acct.apply(&rev).unwrap();
    let (g2, _) = account::genesis(&pool_signer(2), &pool_dh(2), 1);
    let other = AccountState::from_genesis(&g2).unwrap();
    Fixture {
        acct,
        other,
        account_key: k1,
    }
}
