//! Decoding of the three protobuf blobs whatsapp-rust's SQLite store keeps where this crate
//! keeps columns: the device's cached server cert chain, app-state sync keys and app-state
//! hash states (`whatsapp-rust-sqlite-storage` 0.7.0, `proto/wire.proto` and `src/wire.rs`).
//!
//! That crate's decoders are private to it, and it generates its message types at build time
//! with `buffa`, which this crate does not depend on; so [`PostgresStore::import_sqlite`]
//! decodes here instead. The messages are four flat proto3 messages, and every rule below is
//! the one `buffa` 0.9 applies to them (so a blob decodes here exactly when it decodes there,
//! to the same value):
//! - varints of at most 10 bytes, the 10th holding only bit 63; field number 0, wire types 6
//!   and 7, a stray end-group and a truncated field are errors;
//! - a known field with another wire type is an error; unknown fields (groups included, nested
//!   at most 100 deep) are skipped;
//! - a repeated scalar or bytes field keeps its last value, a repeated message field merges;
//! - a map entry's missing key or value is its default, a repeated map key keeps its last entry;
//! - strings must be UTF-8.
//!
//! Then the same checks as the SQLite store's `wire.rs`: both certs present, 32-byte cert keys,
//! 32-byte app-state master keys, 128-byte hashes.
//!
//! [`PostgresStore::import_sqlite`]: crate::PostgresStore::import_sqlite

use std::collections::HashMap;
use std::fmt;

use wacore::appstate::hash::HashState;
use wacore::store::device::{CachedNoiseCert, CachedServerCertChain};
use wacore::store::traits::AppStateSyncKey;

use crate::app_sync::APP_STATE_KEY_LEN;

/// Length of a cert key (an X25519 public key) in `CachedNoiseCert`.
const NOISE_KEY_LEN: usize = 32;
/// Length of an app-state hash in `HashState`.
const HASH_STATE_LEN: usize = 128;
/// buffa's nesting budget for skipped groups.
const RECURSION_LIMIT: u32 = 100;

/// Why a blob does not decode. The import only counts such rows (the SQLite store reads them as
/// absent), so a short static reason is all it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireError(&'static str);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for WireError {}

type Result<T> = std::result::Result<T, WireError>;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// A field's key: its number and wire type.
#[derive(Clone, Copy)]
struct Tag {
    field: u32,
    wire_type: u8,
}

impl Tag {
    fn expect(self, wire_type: u8) -> Result<()> {
        if self.wire_type == wire_type { Ok(()) } else { Err(WireError("wire type mismatch")) }
    }
}

/// A cursor over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        if self.buf.len() < len {
            return Err(WireError("unexpected end of blob"));
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = self.take(1)?[0];
            if i == 9 {
                // The 10th byte carries bit 63 only; more is an overflow or an 11th byte.
                if byte > 1 {
                    return Err(WireError("varint too long"));
                }
                return Ok(value | (u64::from(byte) << 63));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError("varint too long"))
    }

    fn tag(&mut self) -> Result<Tag> {
        let raw = u32::try_from(self.varint()?).map_err(|_| WireError("invalid field number"))?;
        let wire_type = (raw & 7) as u8;
        if wire_type > FIXED32 {
            return Err(WireError("invalid wire type"));
        }
        let field = raw >> 3;
        if field == 0 {
            return Err(WireError("invalid field number"));
        }
        Ok(Tag { field, wire_type })
    }

    /// A length-delimited payload (bytes, string, message or map entry).
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = usize::try_from(self.varint()?).map_err(|_| WireError("length too large"))?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| WireError("invalid UTF-8"))
    }

    /// Skips the payload of an unknown field.
    fn skip(&mut self, tag: Tag, depth: u32) -> Result<()> {
        match tag.wire_type {
            VARINT => {
                self.varint()?;
            }
            FIXED64 => {
                self.take(8)?;
            }
            LEN => {
                self.bytes()?;
            }
            FIXED32 => {
                self.take(4)?;
            }
            START_GROUP => {
                let depth = depth.checked_sub(1).ok_or(WireError("recursion limit exceeded"))?;
                loop {
                    let nested = self.tag()?;
                    if nested.wire_type == END_GROUP {
                        if nested.field != tag.field {
                            return Err(WireError("invalid end group"));
                        }
                        break;
                    }
                    self.skip(nested, depth)?;
                }
            }
            _ => return Err(WireError("invalid wire type")),
        }
        Ok(())
    }

    /// Reads every field of the message, handing each to `field`, which returns `false` for a
    /// field number it does not know (then skipped).
    fn fields(
        mut self,
        depth: u32,
        mut field: impl FnMut(Tag, &mut Self) -> Result<bool>,
    ) -> Result<()> {
        while !self.is_empty() {
            let tag = self.tag()?;
            if !field(tag, &mut self)? {
                self.skip(tag, depth)?;
            }
        }
        Ok(())
    }
}

/// `wire.NoiseCert`, merged field by field as proto3 merges a repeated message field.
#[derive(Default)]
struct NoiseCertWire {
    key: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

impl NoiseCertWire {
    fn merge(&mut self, bytes: &[u8], depth: u32) -> Result<()> {
        let depth = depth.checked_sub(1).ok_or(WireError("recursion limit exceeded"))?;
        Reader::new(bytes).fields(depth, |tag, r| {
            match tag.field {
                1 => {
                    tag.expect(LEN)?;
                    self.key = r.bytes()?.to_vec();
                }
                // int64: the varint's bits, two's complement.
                2 => {
                    tag.expect(VARINT)?;
                    self.not_before = r.varint()? as i64;
                }
                3 => {
                    tag.expect(VARINT)?;
                    self.not_after = r.varint()? as i64;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })
    }

    fn into_cert(self) -> Result<CachedNoiseCert> {
        let key: [u8; NOISE_KEY_LEN] =
            self.key.try_into().map_err(|_| WireError("noise_cert.key is not 32 bytes"))?;
        Ok(CachedNoiseCert { key, not_before: self.not_before, not_after: self.not_after })
    }
}

/// `wire.ServerCertChain`, as the SQLite store's `decode_server_cert_chain` reads it.
pub(crate) fn decode_server_cert_chain(bytes: &[u8]) -> Result<CachedServerCertChain> {
    let mut intermediate: Option<NoiseCertWire> = None;
    let mut leaf: Option<NoiseCertWire> = None;
    Reader::new(bytes).fields(RECURSION_LIMIT, |tag, r| {
        let slot = match tag.field {
            1 => &mut intermediate,
            2 => &mut leaf,
            _ => return Ok(false),
        };
        tag.expect(LEN)?;
        let payload = r.bytes()?;
        slot.get_or_insert_with(NoiseCertWire::default).merge(payload, RECURSION_LIMIT)?;
        Ok(true)
    })?;
    let intermediate =
        intermediate.ok_or(WireError("server_cert_chain.intermediate missing"))?.into_cert()?;
    let leaf = leaf.ok_or(WireError("server_cert_chain.leaf missing"))?.into_cert()?;
    Ok(CachedServerCertChain { intermediate, leaf })
}

/// `wire.AppStateSyncKeyWire`, as the SQLite store's `decode_app_state_sync_key` reads it:
/// a master key that is not 32 bytes is an error (the store then reads the key as absent).
pub(crate) fn decode_app_state_sync_key(bytes: &[u8]) -> Result<AppStateSyncKey> {
    let mut key = AppStateSyncKey::default();
    Reader::new(bytes).fields(RECURSION_LIMIT, |tag, r| {
        match tag.field {
            1 => {
                tag.expect(LEN)?;
                key.key_data = r.bytes()?.to_vec();
            }
            2 => {
                tag.expect(LEN)?;
                key.fingerprint = r.bytes()?.to_vec();
            }
            3 => {
                tag.expect(VARINT)?;
                key.timestamp = r.varint()? as i64;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if key.key_data.len() != APP_STATE_KEY_LEN {
        return Err(WireError("app_state_sync_key.key_data is not 32 bytes"));
    }
    Ok(key)
}

/// One `map<string, bytes>` entry.
fn map_entry(bytes: &[u8], depth: u32) -> Result<(String, Vec<u8>)> {
    let depth = depth.checked_sub(1).ok_or(WireError("recursion limit exceeded"))?;
    let (mut key, mut value) = (String::new(), Vec::new());
    Reader::new(bytes).fields(depth, |tag, r| {
        match tag.field {
            1 => {
                tag.expect(LEN)?;
                key = r.string()?;
            }
            2 => {
                tag.expect(LEN)?;
                value = r.bytes()?.to_vec();
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((key, value))
}

/// `wire.HashStateWire`, as the SQLite store's `decode_hash_state` reads it: a hash that is not
/// 128 bytes is an error (the store then reads the collection as never synced).
pub(crate) fn decode_hash_state(bytes: &[u8]) -> Result<HashState> {
    let mut version = 0u64;
    let mut hash = Vec::new();
    let mut index_value_map = HashMap::new();
    let mut mac_mismatch_fatal = false;
    Reader::new(bytes).fields(RECURSION_LIMIT, |tag, r| {
        match tag.field {
            1 => {
                tag.expect(VARINT)?;
                version = r.varint()?;
            }
            2 => {
                tag.expect(LEN)?;
                hash = r.bytes()?.to_vec();
            }
            3 => {
                tag.expect(LEN)?;
                let (key, value) = map_entry(r.bytes()?, RECURSION_LIMIT)?;
                index_value_map.insert(key, value);
            }
            4 => {
                tag.expect(VARINT)?;
                mac_mismatch_fatal = r.varint()? != 0;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let hash: [u8; HASH_STATE_LEN] =
        hash.try_into().map_err(|_| WireError("hash_state.hash is not 128 bytes"))?;
    Ok(HashState { version, hash, index_value_map, mac_mismatch_fatal })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn field_bytes(field: u32, payload: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(field << 3 | 2), out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn field_varint(field: u32, v: u64, out: &mut Vec<u8>) {
        varint(u64::from(field << 3), out);
        varint(v, out);
    }

    fn cert(key: u8, not_before: i64, not_after: i64) -> Vec<u8> {
        let mut out = Vec::new();
        field_bytes(1, &[key; 32], &mut out);
        field_varint(2, not_before as u64, &mut out);
        field_varint(3, not_after as u64, &mut out);
        out
    }

    #[test]
    fn a_cert_chain_decodes_with_negative_times_and_unknown_fields() {
        let mut blob = Vec::new();
        field_bytes(1, &cert(0xab, -5, 1_900_000_000), &mut blob);
        // An unknown varint, fixed32, fixed64 and group are skipped.
        field_varint(9, 7, &mut blob);
        blob.extend([(10 << 3) | 5, 1, 2, 3, 4]);
        blob.extend([(11 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8]);
        blob.extend([(12 << 3) | 3, (1 << 3), 1, (12 << 3) | 4]);
        field_bytes(2, &cert(0xcd, 1, 2), &mut blob);
        let chain = decode_server_cert_chain(&blob).expect("decodes");
        assert_eq!(chain.intermediate.key, [0xab; 32]);
        assert_eq!(chain.intermediate.not_before, -5);
        assert_eq!(chain.intermediate.not_after, 1_900_000_000);
        assert_eq!(chain.leaf.key, [0xcd; 32]);
        assert_eq!((chain.leaf.not_before, chain.leaf.not_after), (1, 2));
    }

    #[test]
    fn a_repeated_cert_merges_and_a_missing_one_is_an_error() {
        let mut blob = Vec::new();
        field_bytes(1, &cert(1, 10, 20), &mut blob);
        let mut later = Vec::new();
        field_varint(3, 30, &mut later);
        field_bytes(1, &later, &mut blob);
        assert!(decode_server_cert_chain(&blob).is_err(), "no leaf");
        field_bytes(2, &cert(2, 1, 2), &mut blob);
        let chain = decode_server_cert_chain(&blob).expect("decodes");
        assert_eq!((chain.intermediate.key[0], chain.intermediate.not_before), (1, 10));
        assert_eq!(chain.intermediate.not_after, 30, "the second occurrence merged");
    }

    #[test]
    fn malformed_blobs_are_errors() {
        let mut short_key = Vec::new();
        let mut c = Vec::new();
        field_bytes(1, &[0; 5], &mut c);
        field_bytes(1, &c, &mut short_key);
        field_bytes(2, &cert(2, 1, 2), &mut short_key);
        for blob in [
            short_key,
            vec![0x0a, 5, 1],      // truncated payload
            vec![0x00, 1],         // field number 0
            vec![(1 << 3) | 6, 0], // wire type 6
            vec![(1 << 3), 1],     // field 1 as a varint
            vec![(9 << 3) | 4],    // stray end group
            vec![0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], // overflow
            b"not protobuf at all".to_vec(),
        ] {
            assert!(decode_server_cert_chain(&blob).is_err(), "{blob:?} decoded");
        }
    }

    #[test]
    fn sync_keys_need_a_32_byte_master_key() {
        let mut blob = Vec::new();
        field_bytes(1, &[7; 32], &mut blob);
        field_bytes(2, &[1, 2], &mut blob);
        field_varint(3, (-3i64) as u64, &mut blob);
        let key = decode_app_state_sync_key(&blob).expect("decodes");
        assert_eq!((key.key_data, key.fingerprint, key.timestamp), (vec![7; 32], vec![1, 2], -3));
        let mut short = Vec::new();
        field_bytes(1, &[7; 16], &mut short);
        assert!(decode_app_state_sync_key(&short).is_err());
        assert!(decode_app_state_sync_key(&[]).is_err(), "an empty key is no key");
    }

    #[test]
    fn hash_states_decode_maps_and_the_full_u64() {
        let mut blob = Vec::new();
        field_varint(1, u64::MAX, &mut blob);
        field_bytes(2, &[9; 128], &mut blob);
        let mut entry = Vec::new();
        field_bytes(1, b"idx-a", &mut entry);
        field_bytes(2, &[1, 2, 3], &mut entry);
        field_bytes(3, &entry, &mut blob);
        let mut only_key = Vec::new();
        field_bytes(1, b"idx-b", &mut only_key);
        field_bytes(3, &only_key, &mut blob);
        field_varint(4, 1, &mut blob);
        let state = decode_hash_state(&blob).expect("decodes");
        assert_eq!(state.version, u64::MAX);
        assert_eq!(state.hash, [9; 128]);
        assert_eq!(state.index_value_map.len(), 2);
        assert_eq!(state.index_value_map["idx-a"], vec![1, 2, 3]);
        assert_eq!(state.index_value_map["idx-b"], Vec::<u8>::new());
        assert!(state.mac_mismatch_fatal);

        let mut short_hash = Vec::new();
        field_bytes(2, &[9; 64], &mut short_hash);
        assert!(decode_hash_state(&short_hash).is_err());
        let mut bad_key = Vec::new();
        field_bytes(2, &[9; 128], &mut bad_key);
        let mut entry = Vec::new();
        field_bytes(1, &[0xff, 0xfe], &mut entry);
        field_bytes(3, &entry, &mut bad_key);
        assert!(decode_hash_state(&bad_key).is_err(), "a non-UTF-8 key");
    }
}
