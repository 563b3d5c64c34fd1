//! C2SP `signed-note` (Ed25519), `tlog-checkpoint` bodies and `tlog-proof` receipts: strict parsers
//! and writers.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then one or more signature lines
//! `— <name> base64(key id || signature)` (an em dash, U+2014). The key id is the first four bytes of
//! `SHA-256(name || "\n" || 0x01 || public key)`; verifier keys are written
//! `name+hex(id)+base64(0x01 || public key)`.

use base64ct::{Base64, Encoding as _};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::merkle::Hash;

/// Largest note (checkpoint, proof) accepted, in bytes.
pub const MAX_NOTE_LEN: usize = 64 * 1024;
/// Most signature lines accepted on one note (as Go's `note` package).
pub const MAX_SIGNATURES: usize = 100;
/// Most hashes in a `tlog-proof` (a tree of 2^63 leaves needs 63).
pub const MAX_PROOF_HASHES: usize = 63;
/// The first line of a C2SP `tlog-proof`.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

const SIG_PREFIX: &str = "\u{2014} ";
const ALG_ED25519: u8 = 0x01;

/// Whether `name` is a valid key name: non-empty, no whitespace, no `+`.
#[must_use]
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// The C2SP key id of an Ed25519 key.
#[must_use]
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let d: [u8; 32] = h.finalize().into();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// An Ed25519 note verifier key (`name+hex(id)+base64(0x01||key)`).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl std::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl VerifierKey {
    /// The key name (the log origin).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Verifies `sig` over `msg`.
    #[must_use]
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(msg, &sig).is_ok()
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let what = "verifier key";
        let s = s.trim_end_matches(['\n', '\r']);
        // Base64 may contain '+'; names and ids cannot.
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::parse(what, 0, "expected name+id+key"));
        };
        if !is_valid_key_name(name) {
            return Err(Error::parse(what, 0, "invalid key name"));
        }
        let id = parse_hex_id(hex).ok_or(Error::parse(what, name.len() + 1, "bad key id"))?;
        let raw = Base64::decode_vec(b64)
            .map_err(|_| Error::parse(what, name.len() + 10, "bad base64"))?;
        let Some((&ALG_ED25519, key)) = raw.split_first() else {
            return Err(Error::parse(what, name.len() + 10, "not an Ed25519 key"));
        };
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| Error::parse(what, name.len() + 10, "bad key length"))?;
        if key_id(name, &key) != id {
            return Err(Error::parse(
                what,
                name.len() + 1,
                "key id does not match key",
            ));
        }
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| Error::parse(what, name.len() + 10, "invalid Ed25519 point"))?;
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.id,
            Base64::encode_string(&raw)
        )
    }
}

fn parse_hex_id(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// An Ed25519 note signer (the log's checkpoint key).
pub struct NoteSigner {
    name: String,
    id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer named `name` over the 32-byte Ed25519 seed.
    ///
    /// # Errors
    /// An invalid key name.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, Error> {
        if !is_valid_key_name(name) {
            return Err(Error::Invalid(format!("invalid key name {name:?}")));
        }
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// Generates a fresh key from the OS random generator.
    ///
    /// # Errors
    /// An invalid name, or no randomness.
    pub fn generate(name: &str) -> Result<Self, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Invalid(format!("no randomness: {e}")))?;
        Self::from_seed(name, &seed)
    }

    /// Parses the Go `note` private-key form `PRIVATE+KEY+name+hex(id)+base64(0x01||seed)`.
    ///
    /// # Errors
    /// Malformed text or mismatched id.
    pub fn from_skey(s: &str) -> Result<Self, Error> {
        let what = "signer key";
        let s = s.trim_end_matches(['\n', '\r']);
        let rest = s.strip_prefix("PRIVATE+KEY+").ok_or(Error::parse(
            what,
            0,
            "missing PRIVATE+KEY+ prefix",
        ))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::parse(what, 12, "expected name+id+key"));
        };
        let id = parse_hex_id(hex).ok_or(Error::parse(what, 12, "bad key id"))?;
        let raw = Base64::decode_vec(b64).map_err(|_| Error::parse(what, 12, "bad base64"))?;
        let Some((&ALG_ED25519, seed)) = raw.split_first() else {
            return Err(Error::parse(what, 12, "not an Ed25519 key"));
        };
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| Error::parse(what, 12, "bad key length"))?;
        let signer = Self::from_seed(name, &seed)?;
        if signer.id != id {
            return Err(Error::parse(what, 12, "key id does not match key"));
        }
        Ok(signer)
    }

    /// The Go `note` private-key form.
    #[must_use]
    pub fn to_skey(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            Base64::encode_string(&raw)
        )
    }

    /// The key name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier key.
    #[must_use]
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `text` (which must be valid note text) and returns the whole note.
    ///
    /// # Errors
    /// `text` is not valid note text.
    pub fn sign(&self, text: &str) -> Result<String, Error> {
        check_text(text.as_bytes())?;
        let sig = self.key.sign(text.as_bytes());
        let mut raw = self.id.to_be_bytes().to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            Base64::encode_string(&raw)
        ))
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id.
    pub id: u32,
    /// Signature bytes (after the 4-byte id).
    pub sig: Vec<u8>,
}

/// A parsed (not yet verified) signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in `\n`.
    pub text: String,
    /// The signatures, in order.
    pub signatures: Vec<NoteSignature>,
}

fn check_text(text: &[u8]) -> Result<(), Error> {
    let what = "note text";
    if text.is_empty() || text.last() != Some(&b'\n') {
        return Err(Error::parse(what, text.len(), "must end with a newline"));
    }
    let s =
        std::str::from_utf8(text).map_err(|e| Error::parse(what, e.valid_up_to(), "not UTF-8"))?;
    if let Some(pos) = s.find(|c: char| c.is_control() && c != '\n') {
        return Err(Error::parse(what, pos, "control character"));
    }
    Ok(())
}

impl Note {
    /// Parses a signed note strictly.
    ///
    /// # Errors
    /// Oversize, not UTF-8, control characters, no blank line, malformed or missing signatures.
    pub fn parse(msg: &[u8]) -> Result<Self, Error> {
        let what = "signed note";
        if msg.len() > MAX_NOTE_LEN {
            return Err(Error::parse(what, MAX_NOTE_LEN, "note too large"));
        }
        let s = std::str::from_utf8(msg)
            .map_err(|e| Error::parse(what, e.valid_up_to(), "not UTF-8"))?;
        let split =
            s.rfind("\n\n")
                .ok_or(Error::parse(what, 0, "no blank line before signatures"))?;
        let text = &s[..=split];
        check_text(text.as_bytes())?;
        let sigs = &s[split + 2..];
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(Error::parse(
                what,
                msg.len(),
                "signatures must end with a newline",
            ));
        }
        let mut signatures = Vec::new();
        let mut offset = split + 2;
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(Error::parse(what, offset, "too many signatures"));
            }
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(Error::parse(
                what,
                offset,
                "signature line must start with an em dash",
            ))?;
            let (name, b64) = rest.split_once(' ').ok_or(Error::parse(
                what,
                offset,
                "signature line without key name",
            ))?;
            if !is_valid_key_name(name) {
                return Err(Error::parse(what, offset, "invalid key name"));
            }
            let raw = Base64::decode_vec(b64)
                .map_err(|_| Error::parse(what, offset, "bad signature base64"))?;
            if raw.len() < 5 {
                return Err(Error::parse(what, offset, "signature too short"));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
                sig: raw[4..].to_vec(),
            });
            offset += line.len() + 1;
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Verifies the note against `keys`: unknown signatures are ignored, every signature by a known
    /// key (name and id) must verify, and at least one must.
    ///
    /// # Errors
    /// A known key's signature does not verify, or no known key signed.
    pub fn verify(&self, keys: &[VerifierKey]) -> Result<(), Error> {
        let mut verified = false;
        for sig in &self.signatures {
            for key in keys {
                if key.name == sig.name && key.id == sig.id {
                    if !key.verify(self.text.as_bytes(), &sig.sig) {
                        return Err(Error::Signature("invalid signature by a trusted key"));
                    }
                    verified = true;
                }
            }
        }
        if verified {
            Ok(())
        } else {
            Err(Error::Signature("no trusted key signed the note"))
        }
    }
}

/// A C2SP `tlog-checkpoint` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Tree root.
    pub root: Hash,
    /// Extension lines, in order. Unknown ones are kept, not interpreted; a
    /// [`PREV_EXTENSION`] line is the chain link to the previous checkpoint ([`Checkpoint::prev`]).
    pub extensions: Vec<String>,
}

/// The keyword of the extension line that chains a checkpoint to the previous one in its log:
/// `rampart-prev <size> <base64(SHA-256(previous signed note))>`.
pub const PREV_EXTENSION: &str = "rampart-prev";

/// The previous checkpoint named by a [`PREV_EXTENSION`] line: its tree size and the SHA-256 of its
/// exact signed-note bytes (body, blank line and signature lines).
///
/// Every checkpoint the writer signs after a log's first carries one such line inside the signed
/// body, so the checkpoints form a hash chain: removing, inserting or reordering a checkpoint in
/// `checkpoints/history.log` breaks a link that only the signing key could forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrevCheckpoint {
    /// Tree size of the previous checkpoint.
    pub size: u64,
    /// SHA-256 of the previous checkpoint's signed note bytes.
    pub hash: Hash,
}

impl PrevCheckpoint {
    /// The link to the signed note `note`, a checkpoint of tree size `size`.
    #[must_use]
    pub fn of_note(size: u64, note: &[u8]) -> Self {
        Self {
            size,
            hash: Sha256::digest(note).into(),
        }
    }

    /// The extension line (without newline).
    #[must_use]
    pub fn to_line(&self) -> String {
        format!(
            "{PREV_EXTENSION} {} {}",
            self.size,
            Base64::encode_string(&self.hash)
        )
    }

    /// Parses one extension line: `Ok(None)` when it is not a [`PREV_EXTENSION`] line (its first
    /// space-separated word differs), the link when it is a well-formed one.
    ///
    /// # Errors
    /// A [`PREV_EXTENSION`] line that is not exactly `rampart-prev <decimal size without leading
    /// zeros> <canonical base64 of 32 bytes>` (single spaces, nothing else).
    pub fn parse_line(line: &str) -> Result<Option<Self>, Error> {
        let what = "rampart-prev line";
        let Some(rest) = line.strip_prefix(PREV_EXTENSION) else {
            return Ok(None);
        };
        let Some(rest) = rest.strip_prefix(' ') else {
            if rest.is_empty() {
                return Err(Error::parse(what, 0, "missing size and hash"));
            }
            // Another keyword that merely starts with ours (`rampart-previous ...`).
            return Ok(None);
        };
        let at = PREV_EXTENSION.len() + 1;
        let (size, hash) =
            rest.split_once(' ')
                .ok_or(Error::parse(what, at, "expected <size> <hash>"))?;
        let size = parse_decimal(size).ok_or(Error::parse(what, at, "bad tree size"))?;
        let at = at + rest.len() - hash.len();
        let hash = Base64::decode_vec(hash)
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .filter(|h| Base64::encode_string(h) == hash)
            .ok_or(Error::parse(
                what,
                at,
                "bad hash (want canonical base64 of 32 bytes)",
            ))?;
        Ok(Some(Self { size, hash }))
    }
}

impl Checkpoint {
    /// The body text: `origin\nsize\nbase64(root)\n[extensions]`.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            Base64::encode_string(&self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses a checkpoint body strictly (decimal size without leading zeros, canonical base64 of
    /// exactly 32 bytes, non-empty lines).
    ///
    /// # Errors
    /// Any deviation.
    pub fn parse_body(text: &str) -> Result<Self, Error> {
        let what = "checkpoint";
        check_text(text.as_bytes())?;
        let mut lines = text[..text.len() - 1].split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(Error::parse(what, 0, "empty origin"));
        }
        let at = origin.len() + 1;
        let size =
            lines
                .next()
                .and_then(parse_decimal)
                .ok_or(Error::parse(what, at, "bad tree size"))?;
        let at2 = text[at..].find('\n').map_or(at, |p| at + p + 1);
        let root = lines
            .next()
            .and_then(|l| Base64::decode_vec(l).ok())
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or(Error::parse(what, at2, "bad root hash"))?;
        let mut extensions = Vec::new();
        for l in lines {
            if l.is_empty() {
                return Err(Error::parse(what, at2, "empty extension line"));
            }
            extensions.push(l.to_owned());
        }
        let cp = Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        };
        // Unknown extension lines are accepted; ours must be well-formed.
        cp.prev().map_err(|_| {
            Error::parse(
                what,
                at2,
                "malformed or repeated rampart-prev extension line",
            )
        })?;
        Ok(cp)
    }

    /// The chain link to the previous checkpoint: `Ok(None)` when there is no [`PREV_EXTENSION`]
    /// line (a log's first checkpoint).
    ///
    /// # Errors
    /// A malformed [`PREV_EXTENSION`] line, or more than one.
    pub fn prev(&self) -> Result<Option<PrevCheckpoint>, Error> {
        let mut found = None;
        for line in &self.extensions {
            if let Some(p) = PrevCheckpoint::parse_line(line)? {
                if found.is_some() {
                    return Err(Error::parse(
                        "checkpoint",
                        0,
                        "more than one rampart-prev line",
                    ));
                }
                found = Some(p);
            }
        }
        Ok(found)
    }

    /// Signs this checkpoint.
    ///
    /// # Errors
    /// The origin is not valid note text.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, Error> {
        signer.sign(&self.to_text())
    }

    /// Parses a signed checkpoint and verifies it against `keys`; the origin must equal the name of
    /// the key that verified it when a single key is given.
    ///
    /// # Errors
    /// Parse or signature failures.
    pub fn open(note: &[u8], keys: &[VerifierKey]) -> Result<Self, Error> {
        let n = Note::parse(note)?;
        let cp = Self::parse_body(&n.text)?;
        n.verify(keys)?;
        Ok(cp)
    }
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// A C2SP `tlog-proof`: an inclusion proof for `index` against a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Optional opaque extra data.
    pub extra: Option<Vec<u8>>,
    /// The entry index.
    pub index: u64,
    /// Inclusion proof hashes.
    pub hashes: Vec<Hash>,
    /// The signed checkpoint (a whole note).
    pub checkpoint: String,
}

impl TlogProof {
    /// The text form.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            s.push_str("extra ");
            s.push_str(&Base64::encode_string(extra));
            s.push('\n');
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.hashes {
            s.push_str(&Base64::encode_string(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Parses a proof strictly. The checkpoint note is parsed but not verified (see
    /// [`TlogProof::check`]).
    ///
    /// # Errors
    /// Any deviation from the format.
    pub fn parse(text: &[u8]) -> Result<Self, Error> {
        let what = "tlog-proof";
        if text.len() > MAX_NOTE_LEN + 4096 {
            return Err(Error::parse(what, 0, "proof too large"));
        }
        let s = std::str::from_utf8(text)
            .map_err(|e| Error::parse(what, e.valid_up_to(), "not UTF-8"))?;
        let mut rest = s;
        let mut offset = 0usize;
        let next_line = |rest: &mut &str, offset: &mut usize| -> Option<String> {
            let (line, tail) = rest.split_once('\n')?;
            *offset += line.len() + 1;
            let line = line.to_owned();
            *rest = tail;
            Some(line)
        };
        if next_line(&mut rest, &mut offset).as_deref() != Some(TLOG_PROOF_HEADER) {
            return Err(Error::parse(
                what,
                0,
                "missing c2sp.org/tlog-proof@v1 header",
            ));
        }
        let mut line = next_line(&mut rest, &mut offset).ok_or(Error::parse(
            what,
            offset,
            "missing index line",
        ))?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            extra =
                Some(Base64::decode_vec(b64).map_err(|_| Error::parse(what, offset, "bad extra"))?);
            line = next_line(&mut rest, &mut offset).ok_or(Error::parse(
                what,
                offset,
                "missing index line",
            ))?;
        }
        let index = line
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or(Error::parse(what, offset, "bad index line"))?;
        let mut hashes = Vec::new();
        loop {
            let line = next_line(&mut rest, &mut offset).ok_or(Error::parse(
                what,
                offset,
                "missing blank line before checkpoint",
            ))?;
            if line.is_empty() {
                break;
            }
            if hashes.len() == MAX_PROOF_HASHES {
                return Err(Error::parse(what, offset, "too many proof hashes"));
            }
            let h = Base64::decode_vec(&line)
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .ok_or(Error::parse(what, offset, "bad proof hash"))?;
            hashes.push(h);
        }
        // The checkpoint must itself be a well-formed signed checkpoint.
        let note = Note::parse(rest.as_bytes())
            .map_err(|_| Error::parse(what, offset, "malformed checkpoint note"))?;
        Checkpoint::parse_body(&note.text)
            .map_err(|_| Error::parse(what, offset, "malformed checkpoint body"))?;
        Ok(Self {
            extra,
            index,
            hashes,
            checkpoint: rest.to_owned(),
        })
    }

    /// Checks the proof: the checkpoint is signed by one of `keys`, and `entry` (the record line,
    /// without its newline) is at `index` in the checkpointed tree. Returns the checkpoint.
    ///
    /// # Errors
    /// Signature or inclusion failure.
    pub fn check(&self, entry: &[u8], keys: &[VerifierKey]) -> Result<Checkpoint, Error> {
        let cp = Checkpoint::open(self.checkpoint.as_bytes(), keys)?;
        let leaf = crate::merkle::leaf_hash(entry);
        if !crate::merkle::verify_inclusion(self.index, cp.size, &leaf, &self.hashes, &cp.root) {
            return Err(Error::Proof("inclusion proof does not verify"));
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::from_seed("rampart.example/audit", &[7u8; 32]).unwrap()
    }

    #[test]
    fn key_round_trips_and_id_matches_definition() {
        let s = signer();
        let v = s.verifier();
        let text = v.to_string();
        assert_eq!(text.parse::<VerifierKey>().unwrap(), v);
        let s2 = NoteSigner::from_skey(&s.to_skey()).unwrap();
        assert_eq!(s2.verifier(), v);
        // Key id by its definition.
        let mut h = Sha256::new();
        h.update(b"rampart.example/audit\n\x01");
        h.update(v.key.as_bytes());
        let d = h.finalize();
        assert_eq!(v.id().to_be_bytes(), [d[0], d[1], d[2], d[3]]);
        // A tampered id is rejected.
        let mut bad = text.clone();
        let pos = bad.find('+').unwrap() + 1;
        let c = if &bad[pos..=pos] == "0" { "1" } else { "0" };
        bad.replace_range(pos..=pos, c);
        assert!(bad.parse::<VerifierKey>().is_err());
    }

    #[test]
    fn checkpoint_signs_parses_and_verifies() {
        let s = signer();
        let cp = Checkpoint {
            origin: "rampart.example/audit".into(),
            size: 12345,
            root: [9u8; 32],
            extensions: vec![],
        };
        let note = cp.sign(&s).unwrap();
        assert!(note.contains("\n\n\u{2014} rampart.example/audit "));
        assert_eq!(
            Checkpoint::open(note.as_bytes(), &[s.verifier()]).unwrap(),
            cp
        );
        // A different key does not verify it.
        let other = NoteSigner::from_seed("rampart.example/audit", &[8u8; 32]).unwrap();
        assert!(Checkpoint::open(note.as_bytes(), &[other.verifier()]).is_err());
        // Tampered body.
        let bad = note.replace("12345", "12346");
        assert!(Checkpoint::open(bad.as_bytes(), &[s.verifier()]).is_err());
    }

    #[test]
    fn strict_parser_rejects_malformed_checkpoints() {
        let root = Base64::encode_string(&[0u8; 32]);
        for body in [
            format!("o\n012\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("\n1\n{root}\n"),
            format!("o\n1\n{root}"),
            "o\n1\nAAAA\n".to_owned(),
            format!("o\n1\n{root}\n\n"),
            format!("o\n1\n{root}\nx\ty\n"),
            format!("o\n18446744073709551616\n{root}\n"),
        ] {
            assert!(Checkpoint::parse_body(&body).is_err(), "{body:?}");
        }
        assert!(Checkpoint::parse_body(&format!("o\n0\n{root}\next\n")).is_ok());
    }

    #[test]
    fn non_canonical_base64_is_rejected() {
        // 32 bytes leave 2 unused bits in the last base64 digit: "AAA...AB=" decodes to the same
        // bytes as "AAA...AA=" with a lenient decoder.
        let root = Base64::encode_string(&[0u8; 32]);
        let loose = format!("{}B=", &root[..root.len() - 2]);
        assert!(Checkpoint::parse_body(&format!("o\n1\n{loose}\n")).is_err());
    }

    #[test]
    fn prev_line_parses_strictly_and_round_trips() {
        let h = [0xabu8; 32];
        let b64 = Base64::encode_string(&h);
        let p = PrevCheckpoint { size: 42, hash: h };
        assert_eq!(p.to_line(), format!("rampart-prev 42 {b64}"));
        assert_eq!(PrevCheckpoint::parse_line(&p.to_line()).unwrap(), Some(p));
        let zero = PrevCheckpoint { size: 0, hash: h };
        assert_eq!(
            PrevCheckpoint::parse_line(&zero.to_line()).unwrap(),
            Some(zero)
        );
        // The hash is of the exact note bytes.
        let note = signer().sign("hello\n").unwrap();
        let link = PrevCheckpoint::of_note(7, note.as_bytes());
        assert_eq!(link.hash, <[u8; 32]>::from(Sha256::digest(note.as_bytes())));
        // Other extension lines are not ours (and are no error).
        for other in [
            "rampart-previous 1 x",
            "rampart-prevx",
            "other 1 2",
            "Rampart-prev 1 AAAA",
            " rampart-prev 1",
        ] {
            assert_eq!(
                PrevCheckpoint::parse_line(other).unwrap(),
                None,
                "{other:?}"
            );
        }
        // Ours must be well-formed.
        let mut noncanonical = b64.clone();
        noncanonical.replace_range(42..43, "t"); // 0xab... ends in "s=": low bits must be zero
        for bad in [
            "rampart-prev".to_owned(),
            "rampart-prev ".to_owned(),
            "rampart-prev 42".to_owned(),
            format!("rampart-prev {b64}"),
            format!("rampart-prev 042 {b64}"),
            format!("rampart-prev -1 {b64}"),
            format!("rampart-prev +1 {b64}"),
            format!("rampart-prev 18446744073709551616 {b64}"),
            format!("rampart-prev  42 {b64}"),
            format!("rampart-prev 42  {b64}"),
            format!("rampart-prev 42 {b64} "),
            format!("rampart-prev 42 {b64} extra"),
            format!("rampart-prev 42 {}", &b64[..40]),
            format!("rampart-prev 42 {}", Base64::encode_string(&[1u8; 31])),
            format!("rampart-prev 42 {}", Base64::encode_string(&[1u8; 33])),
            format!("rampart-prev 42 {}", b64.trim_end_matches('=')),
            format!("rampart-prev 42 {noncanonical}"),
        ] {
            assert!(PrevCheckpoint::parse_line(&bad).is_err(), "{bad:?}");
        }
        // In a checkpoint body: at most one, well-formed; unknown extensions still accepted.
        let root = Base64::encode_string(&[0u8; 32]);
        let line = p.to_line();
        let cp = Checkpoint::parse_body(&format!("o\n43\n{root}\n{line}\nvendor ext\n")).unwrap();
        assert_eq!(cp.prev().unwrap(), Some(p));
        assert_eq!(cp.extensions.len(), 2);
        let cp = Checkpoint::parse_body(&format!("o\n43\n{root}\nvendor ext\n")).unwrap();
        assert_eq!(cp.prev().unwrap(), None);
        for body in [
            format!("o\n43\n{root}\n{line}\n{line}\n"),
            format!("o\n43\n{root}\nrampart-prev 42\n"),
            format!("o\n43\n{root}\nrampart-prev 42 {b64} \n"),
        ] {
            assert!(Checkpoint::parse_body(&body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn note_parser_rejects_bad_signature_lines() {
        let note = signer().sign("hello\n").unwrap();
        assert!(Note::parse(note.as_bytes()).is_ok());
        for bad in [
            note.replace('\u{2014}', "-"),
            note.trim_end().to_owned(),
            note.replace("\n\n", "\n"),
            "hello\n\n\u{2014} name AAAA\n".to_owned(),
            "hello\n\n".to_owned(),
        ] {
            assert!(Note::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_signatures_are_ignored_but_one_trusted_is_required() {
        let s = signer();
        let other = NoteSigner::from_seed("witness.example", &[3u8; 32]).unwrap();
        let note = s.sign("hello\n").unwrap();
        let extra = other.sign("hello\n").unwrap();
        let both = format!("{note}{}", extra.split("\n\n").nth(1).unwrap());
        assert!(
            Note::parse(both.as_bytes())
                .unwrap()
                .verify(&[s.verifier()])
                .is_ok()
        );
        assert!(
            Note::parse(both.as_bytes())
                .unwrap()
                .verify(&[other.verifier()])
                .is_ok()
        );
        let third = NoteSigner::from_seed("third", &[4u8; 32]).unwrap();
        assert!(
            Note::parse(both.as_bytes())
                .unwrap()
                .verify(&[third.verifier()])
                .is_err()
        );
    }

    #[test]
    fn tlog_proof_round_trips() {
        let s = signer();
        let cp = Checkpoint {
            origin: "rampart.example/audit".into(),
            size: 3,
            root: [1u8; 32],
            extensions: vec![],
        };
        let p = TlogProof {
            extra: Some(b"x".to_vec()),
            index: 2,
            hashes: vec![[2u8; 32], [3u8; 32]],
            checkpoint: cp.sign(&s).unwrap(),
        };
        let text = p.to_text();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra eA==\nindex 2\n"));
        assert_eq!(TlogProof::parse(text.as_bytes()).unwrap(), p);
        assert!(TlogProof::parse(text.replace("index 2", "index 02").as_bytes()).is_err());
    }
}
