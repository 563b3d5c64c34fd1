//! The audit record: one RFC 8785 canonical JSON object per line. The Merkle leaf is the line's
//! bytes without the newline.

use hmac::{KeyInit as _, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::jcs;

/// Longest record line accepted (the tlog-tiles entry bundle prefix is a uint16).
pub const MAX_LINE_LEN: usize = 65_535;
/// The record format version written in `v`.
pub const RECORD_VERSION: u32 = 1;

/// Request stage: long or state-changing operations are recorded when received and when completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Before the operation runs.
    Received,
    /// After the outcome is known.
    #[default]
    Completed,
}

/// Who made the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// Principal id (user or token name), in clear.
    pub id: String,
    /// Kind (`token`, `anonymous`, `admin`, ...).
    pub kind: String,
    /// HMAC-SHA256 of the credential under the audit key, hex ([`AuditKey::hash_secret`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
    /// Id of the audit key that made `token_hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// One audit record. `seq` and `time` are assigned by the log when it sequences the record (any value
/// the caller sets is replaced), so indexes are contiguous and times never go backwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// Index of the record in the log (its Merkle leaf index).
    pub seq: u64,
    /// RFC 3339 UTC time with milliseconds, e.g. `2026-11-28T06:20:00.123Z`.
    pub time: String,
    /// Request id, returned to the client as `Rampart-Audit-Id`.
    pub audit_id: String,
    /// Stage.
    pub stage: Stage,
    /// Who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// Client address: the peer, or the client a trusted reverse proxy forwarded for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// The trusted reverse proxy that connected, when `source_ip` came from `X-Forwarded-For`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_ip: Option<String>,
    /// What (`pull`, `push`, `delete`, `login`, `token.create`, ...).
    pub action: String,
    /// Repository name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Tag or digest reference as requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Content digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `allow` or `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// The rule that made the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Bytes transferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Duration in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl Record {
    /// A record of `action` with the given audit id (other fields empty).
    #[must_use]
    pub fn new(audit_id: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            v: RECORD_VERSION,
            audit_id: audit_id.into(),
            action: action.into(),
            ..Self::default()
        }
    }

    /// The canonical line (without the newline).
    ///
    /// # Errors
    /// A value JCS cannot represent exactly, or a line over [`MAX_LINE_LEN`].
    pub fn to_line(&self) -> Result<String, Error> {
        let line = self.write_canonical()?;
        if line.len() > MAX_LINE_LEN {
            return Err(Error::Record(format!(
                "record is {} bytes, over {MAX_LINE_LEN}",
                line.len()
            )));
        }
        Ok(line)
    }

    /// The JCS form written directly (keys are ASCII, so UTF-16 order is byte order; listed here
    /// sorted). Equal to `jcs::canonicalize(serde_json::to_value(self))`, which a test checks, and
    /// about ten times cheaper: it runs on the writer's critical path.
    fn write_canonical(&self) -> Result<String, Error> {
        fn key(out: &mut String, first: &mut bool, k: &str) {
            if !*first {
                out.push(',');
            }
            *first = false;
            out.push('"');
            out.push_str(k);
            out.push_str("\":");
        }
        fn int(out: &mut String, v: u64) -> Result<(), Error> {
            if v > jcs::MAX_SAFE_INTEGER {
                return Err(Error::Record(format!("integer {v} beyond 2^53")));
            }
            out.push_str(&v.to_string());
            Ok(())
        }
        let mut out = String::with_capacity(512);
        let mut first = true;
        out.push('{');
        key(&mut out, &mut first, "action");
        jcs::write_string(&self.action, &mut out);
        key(&mut out, &mut first, "audit_id");
        jcs::write_string(&self.audit_id, &mut out);
        if let Some(v) = self.bytes {
            key(&mut out, &mut first, "bytes");
            int(&mut out, v)?;
        }
        for (k, v) in [("decision", &self.decision), ("digest", &self.digest)] {
            if let Some(v) = v {
                key(&mut out, &mut first, k);
                jcs::write_string(v, &mut out);
            }
        }
        if let Some(v) = self.duration_ms {
            key(&mut out, &mut first, "duration_ms");
            int(&mut out, v)?;
        }
        if let Some(p) = &self.principal {
            key(&mut out, &mut first, "principal");
            out.push_str("{\"id\":");
            jcs::write_string(&p.id, &mut out);
            if let Some(k) = &p.key_id {
                out.push_str(",\"key_id\":");
                jcs::write_string(k, &mut out);
            }
            out.push_str(",\"kind\":");
            jcs::write_string(&p.kind, &mut out);
            if let Some(t) = &p.token_hash {
                out.push_str(",\"token_hash\":");
                jcs::write_string(t, &mut out);
            }
            out.push('}');
        }
        if let Some(v) = &self.proxy_ip {
            key(&mut out, &mut first, "proxy_ip");
            jcs::write_string(v, &mut out);
        }
        for (k, v) in [
            ("reference", &self.reference),
            ("repository", &self.repository),
            ("rule", &self.rule),
        ] {
            if let Some(v) = v {
                key(&mut out, &mut first, k);
                jcs::write_string(v, &mut out);
            }
        }
        key(&mut out, &mut first, "seq");
        int(&mut out, self.seq)?;
        if let Some(v) = &self.source_ip {
            key(&mut out, &mut first, "source_ip");
            jcs::write_string(v, &mut out);
        }
        key(&mut out, &mut first, "stage");
        out.push_str(match self.stage {
            Stage::Received => "\"received\"",
            Stage::Completed => "\"completed\"",
        });
        if let Some(v) = self.status {
            key(&mut out, &mut first, "status");
            int(&mut out, u64::from(v))?;
        }
        key(&mut out, &mut first, "time");
        jcs::write_string(&self.time, &mut out);
        key(&mut out, &mut first, "v");
        int(&mut out, u64::from(self.v))?;
        out.push('}');
        Ok(out)
    }

    /// The same line through the generic path: `serde_json` value, then JCS.
    ///
    /// # Errors
    /// As [`Record::to_line`].
    pub fn to_line_generic(&self) -> Result<String, Error> {
        let v = serde_json::to_value(self).map_err(|e| Error::Record(e.to_string()))?;
        jcs::canonicalize(&v).map_err(Error::Record)
    }

    /// Parses a stored line strictly: known fields only, canonical form, a valid time.
    ///
    /// # Errors
    /// Not JSON, unknown fields, not canonical, bad time.
    pub fn parse_line(line: &[u8]) -> Result<Self, Error> {
        if line.len() > MAX_LINE_LEN {
            return Err(Error::Record("line too long".into()));
        }
        let r: Self = serde_json::from_slice(line).map_err(|e| Error::Record(e.to_string()))?;
        if parse_time_ms(&r.time).is_none()
            || format_time_ms(parse_time_ms(&r.time).unwrap_or(0)) != r.time
        {
            return Err(Error::Record(format!("bad time {:?}", r.time)));
        }
        if r.to_line()?.as_bytes() != line {
            return Err(Error::Record("not in canonical form".into()));
        }
        Ok(r)
    }

    /// Time in milliseconds since the Unix epoch (`None` when malformed).
    #[must_use]
    pub fn time_ms(&self) -> Option<u64> {
        parse_time_ms(&self.time)
    }
}

/// The audit HMAC key: secrets are recorded only as `HMAC-SHA256(key, value)`.
#[derive(Clone)]
pub struct AuditKey {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AuditKey {
    /// A key from its 32 bytes. The id is `hmac-` + the first 8 hex digits of `SHA-256(key)`.
    #[must_use]
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let d = Sha256::digest(key);
        let id = format!("hmac-{}", hex(&d[..4]));
        Self { key, id }
    }

    /// The key id recorded next to each hash.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `hex(HMAC-SHA256(key, value))`.
    #[must_use]
    pub fn hash_secret(&self, value: &[u8]) -> String {
        // INVARIANT: HMAC accepts keys of any length.
        let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(value);
        hex(&mac.finalize().into_bytes())
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

/// Lowercase hex.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(D[usize::from(b >> 4)]));
        s.push(char::from(D[usize::from(b & 15)]));
    }
    s
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the epoch.
#[must_use]
pub fn format_time_ms(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX / 2);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, years 1970-9999) to milliseconds
/// since the epoch (fraction truncated to ms). A bare date `YYYY-MM-DD` means midnight UTC.
#[must_use]
pub fn parse_time_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(1..=12).contains(&mo) {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d == 0 || d > *mdays.get(usize::try_from(mo - 1).ok()?)? || y < 1970 {
        return None;
    }
    let days = u64::try_from(days_from_civil(i64::from(y), mo, d)).ok()?;
    if b.len() == 10 {
        return Some(days * 86_400_000);
    }
    if !matches!(b.get(10), Some(b'T' | b't'))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0u64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                frac_ms = frac_ms * 10 + u64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..3 {
            frac_ms *= 10;
        }
    }
    let offset_min: i64 = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b.get(i + 3) == Some(&b':') => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let m = i64::from(oh * 60 + om);
            if sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let local = days * 86_400 + u64::from(h * 3600 + mi * 60 + sec);
    let utc = i64::try_from(local).ok()? - offset_min * 60;
    Some(u64::try_from(utc).ok()? * 1000 + frac_ms)
}

/// Milliseconds since the epoch, now.
#[must_use]
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Record {
        Record {
            seq: 7,
            time: "2026-11-28T06:20:00.123Z".into(),
            principal: Some(Principal {
                id: "alice".into(),
                kind: "token".into(),
                token_hash: Some("ab".repeat(32)),
                key_id: Some("hmac-01020304".into()),
            }),
            source_ip: Some("10.0.0.1".into()),
            proxy_ip: Some("127.0.0.1".into()),
            repository: Some("acme/llama".into()),
            reference: Some("v1".into()),
            digest: Some(format!("sha256:{}", "0".repeat(64))),
            decision: Some("allow".into()),
            rule: Some("role:reader".into()),
            status: Some(200),
            bytes: Some(1 << 40),
            duration_ms: Some(12),
            ..Record::new("req-1", "pull")
        }
    }

    #[test]
    fn line_is_canonical_sorted_and_round_trips() {
        let r = sample();
        let line = r.to_line().unwrap();
        assert_eq!(line, r.to_line_generic().unwrap());
        let minimal = Record::new("a", "b");
        assert_eq!(
            minimal.to_line().unwrap(),
            minimal.to_line_generic().unwrap()
        );
        assert!(line.starts_with(r#"{"action":"pull","audit_id":"req-1","bytes":1099511627776,"#));
        assert!(
            line.contains(r#""principal":{"id":"alice","key_id":"hmac-01020304","kind":"token","#)
        );
        assert!(!line.contains(' '));
        assert_eq!(Record::parse_line(line.as_bytes()).unwrap(), r);
        // Non-canonical spellings of the same object are refused.
        let spaced = line.replacen(':', ": ", 1);
        assert!(Record::parse_line(spaced.as_bytes()).is_err());
        let unknown = line.replacen('{', r#"{"zz":1,"#, 1);
        assert!(Record::parse_line(unknown.as_bytes()).is_err());
    }

    #[test]
    fn hmac_matches_rfc4231_shape_and_key_id_is_stable() {
        let k = AuditKey::from_bytes([0x0b; 32]);
        let h = k.hash_secret(b"Hi There");
        assert_eq!(h.len(), 64);
        assert_ne!(h, AuditKey::from_bytes([0x0c; 32]).hash_secret(b"Hi There"));
        assert!(k.id().starts_with("hmac-") && k.id().len() == 13);
        // RFC 4231 test case 2 (key "Jefe") through the same primitive.
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn times_format_and_parse() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            parse_time_ms("2000-02-29T00:00:00.000Z"),
            Some(951_782_400_000)
        );
        assert_eq!(parse_time_ms("2000-02-29"), Some(951_782_400_000));
        assert_eq!(
            parse_time_ms("2000-02-29T01:00:00+01:00"),
            Some(951_782_400_000)
        );
        assert_eq!(
            parse_time_ms("2000-02-29T00:00:00.5Z"),
            Some(951_782_400_500)
        );
        for bad in [
            "2001-02-29",
            "2000-13-01",
            "2000-01-01T24:00:00Z",
            "2000-01-01T00:00:00",
            "x",
        ] {
            assert_eq!(parse_time_ms(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn time_round_trips(ms in 0u64..253_402_300_799_999) {
            prop_assert_eq!(parse_time_ms(&format_time_ms(ms)), Some(ms));
        }

        #[test]
        fn arbitrary_strings_round_trip(s in any::<String>(), a in any::<String>()) {
            let mut r = sample();
            r.audit_id = s;
            r.action = a;
            let line = r.to_line().unwrap();
            prop_assert_eq!(&line, &r.to_line_generic().unwrap());
            prop_assert!(!line.contains('\n'));
            prop_assert_eq!(Record::parse_line(line.as_bytes()).unwrap(), r);
        }

        #[test]
        fn direct_writer_equals_generic_jcs(
            opts in proptest::collection::vec(proptest::option::of(".{0,8}"), 9),
            nums in proptest::collection::vec(proptest::option::of(0u64..(1u64 << 53)), 2),
            status in proptest::option::of(any::<u16>()),
            received in any::<bool>(),
            seq in 0u64..(1u64 << 53),
        ) {
            let mut r = Record::new(opts[0].clone().unwrap_or_default(), "pull");
            r.seq = seq;
            r.time = "2026-01-02T03:04:05.678Z".into();
            r.stage = if received { Stage::Received } else { Stage::Completed };
            r.source_ip = opts[1].clone();
            r.proxy_ip = opts[8].clone();
            r.repository = opts[2].clone();
            r.reference = opts[3].clone();
            r.digest = opts[4].clone();
            r.decision = opts[5].clone();
            r.rule = opts[6].clone();
            r.principal = opts[7].clone().map(|id| Principal {
                id,
                kind: "token".into(),
                token_hash: opts[1].clone(),
                key_id: opts[2].clone(),
            });
            r.bytes = nums[0];
            r.duration_ms = nums[1];
            r.status = status;
            let line = r.to_line().unwrap();
            prop_assert_eq!(&line, &r.to_line_generic().unwrap());
            prop_assert_eq!(Record::parse_line(line.as_bytes()).unwrap(), r);
        }

        #[test]
        fn parse_line_never_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Record::parse_line(&b);
        }
    }
}
