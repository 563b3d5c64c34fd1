//! Entry points shared by the fuzz targets (`fuzz/`) and the corpus-replay test.

/// Parses `data` as a Sigstore bundle and, when that succeeds, its DSSE payload as an in-toto
/// statement. Must never panic; an accepted bundle must survive a serialise/parse round trip.
pub fn bundle(data: &[u8]) {
    if let Ok(b) = crate::Bundle::from_json(data) {
        let again = crate::Bundle::from_json(b.to_json().as_bytes());
        assert!(again.is_ok(), "a parsed bundle must re-parse after to_json");
        let _ = crate::Statement::parse(&b.payload);
    }
    let _ = crate::Statement::parse(data);
}
