//! Pickle rules: judge a [`rampart_formats::pickle::Analysis`] and produce a [`Report`].
//!
//! Verdict policy (see DESIGN.md, "Scanner verdicts"):
//!
//! - `malicious`: an `EXT` extension-registry reference (hides the global it loads), a
//!   deny-listed global or call (directly, through a module alias such as
//!   `posixpath.os.system`, or resolved through `getattr`/`import_module` chains), an attribute walk
//!   through a dunder or private attribute or to a sink method, `BUILD` or item mutation on a
//!   global object, `STACK_GLOBAL` with non-string operands, or a call whose callable cannot be
//!   resolved to a name.
//! - `error`: the stream is truncated, broken or hit a limit and nothing malicious was found before
//!   that point (findings before the break always count).
//! - `review`: allow-listed reconstructors (torch, numpy, scikit-learn, copyreg), any global or call
//!   not on the allow-list, dotted walks, persistent ids, out-of-band buffers, frame
//!   overruns, trailing non-pickle data.
//!   Torch's `weights_only` tensor/array reconstructors are `review` by default and `safe` with
//!   [`Options::weights_only_safe`] (for a recognised PyTorch archive).
//! - `safe`: constant data and plain-data constructors (`collections.OrderedDict`, `builtins.set`,
//!   `_codecs.encode(str, 'latin1')`, …) only.

pub mod names;

use std::collections::HashMap;

pub use rampart_formats::pickle::Limits;
use rampart_formats::pickle::{self as fmt, Analysis, AnomalyKind, Arg, CallKind, Status};

use crate::{Finding, Report, Severity, Verdict};
use names::Class;

/// Policy switches for the pickle rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Treat torch's `weights_only` tensor/array reconstructors ([`Class::WeightsOnly`]) and
    /// persistent ids as `safe` instead of `review`. Off by default (a raw pickle that rebuilds
    /// tensors needs review); a container walker that has recognised a PyTorch archive, whose
    /// `persistent_load` only accepts storage references, may turn it on, as scanner.md §4.2
    /// suggests.
    pub weights_only_safe: bool,
}

/// Scans one raw pickle stream (possibly several concatenated pickles) with the default
/// [`Options`]. Offsets in the findings are relative to `bytes`; a container walker sets the
/// member with [`Report::in_member`].
#[must_use]
pub fn scan(bytes: &[u8], limits: &Limits) -> Report {
    scan_with(bytes, limits, &Options::default())
}

/// Like [`scan`], with explicit [`Options`].
#[must_use]
pub fn scan_with(bytes: &[u8], limits: &Limits, options: &Options) -> Report {
    judge_with(&fmt::analyze(bytes, limits), options)
}

/// Applies the pickle rules to an analysis, with the default [`Options`].
#[must_use]
pub fn judge(analysis: &Analysis) -> Report {
    judge_with(analysis, &Options::default())
}

/// Applies the pickle rules to an analysis.
#[must_use]
pub fn judge_with(analysis: &Analysis, options: &Options) -> Report {
    let mut out = Collector::default();
    let mut splits: HashMap<String, (String, String)> = HashMap::new();
    for import in &analysis.imports {
        let full = format!("{}.{}", import.module, import.name);
        splits
            .entry(full.clone())
            .or_insert_with(|| (import.module.clone(), import.name.clone()));
        let class = names::classify(&import.module, &import.name);
        judge_import(&mut out, &full, &class, import.offset, options);
    }
    for call in &analysis.calls {
        judge_call(&mut out, call, &splits);
    }
    for ext in &analysis.ext_uses {
        // Nothing legitimate registers copyreg extension codes; an EXT hides which object is
        // loaded from every byte-level scanner, so it is treated as an evasion.
        out.add(
            Verdict::Malicious,
            "pickle/ext-registry",
            Severity::High,
            "uses the copyreg extension registry (EXT opcode), hiding which global is loaded"
                .to_owned(),
            ext.offset,
            Some(format!("EXT code {}", ext.code)),
        );
    }
    let (pid_verdict, pid_severity) = if options.weights_only_safe {
        (Verdict::Safe, Severity::Info)
    } else {
        (Verdict::Review, Severity::Low)
    };
    for pid in &analysis.persistent_ids {
        out.add(
            pid_verdict,
            "pickle/persistent-id",
            pid_severity,
            "references a persistent id, resolved by the loader's persistent_load".to_owned(),
            pid.offset,
            pid.id.first().map(arg_text),
        );
    }
    for anomaly in &analysis.anomalies {
        let (verdict, rule, severity, what) = match anomaly.kind {
            AnomalyKind::StackGlobalNonString => (
                Verdict::Malicious,
                "pickle/stack-global-non-string",
                Severity::Critical,
                "STACK_GLOBAL with non-string operands (parser evasion)",
            ),
            AnomalyKind::OverlongName => (
                Verdict::Malicious,
                "pickle/overlong-name",
                Severity::High,
                "global name too long to analyse (parser evasion)",
            ),
            AnomalyKind::MutationOfGlobal => (
                Verdict::Malicious,
                "pickle/mutation-of-global",
                Severity::High,
                "mutates a module-level object (item or element assignment on a global)",
            ),
            AnomalyKind::FrameOverrun => (
                Verdict::Review,
                "pickle/frame-overrun",
                Severity::Medium,
                "FRAME length exceeds the remaining input",
            ),
            AnomalyKind::OutOfBandBuffer => (
                Verdict::Review,
                "pickle/out-of-band-buffer",
                Severity::Low,
                "refers to out-of-band buffer data (NEXT_BUFFER)",
            ),
            AnomalyKind::MemoAmplification => (
                Verdict::Malicious,
                "pickle/memo-amplification",
                Severity::High,
                "memo/reference amplification bomb: shared references expand to an astronomically large value",
            ),
            // MisplacedProto and any future kind: unusual structure, needs a look.
            _ => (
                Verdict::Review,
                "pickle/unusual-structure",
                Severity::Low,
                "unusual pickle structure",
            ),
        };
        out.add(
            verdict,
            rule,
            severity,
            what.to_owned(),
            anomaly.offset,
            Some(anomaly.detail.clone()),
        );
    }
    match &analysis.status {
        Status::Clean => {}
        Status::TrailingData { offset } => out.add(
            Verdict::Review,
            "pickle/trailing-data",
            Severity::Low,
            "non-pickle data follows the last complete pickle".to_owned(),
            *offset,
            None,
        ),
        Status::Truncated(e) => out.add(
            Verdict::Error,
            "pickle/truncated",
            Severity::Medium,
            format!("pickle stream is truncated: {e}"),
            e.offset(),
            None,
        ),
        Status::LimitExceeded(e) => out.add(
            Verdict::Error,
            "pickle/limit-exceeded",
            Severity::Medium,
            format!("analysis stopped at a limit: {e}"),
            e.offset(),
            None,
        ),
        // Broken, and any future non-clean status.
        other => {
            let (message, offset) = match other.error() {
                Some(e) => (format!("pickle stream is broken: {e}"), Some(e.offset())),
                None => ("pickle stream ended abnormally".to_owned(), None),
            };
            out.add_opt(
                Verdict::Error,
                "pickle/broken",
                Severity::Medium,
                message,
                offset,
                None,
            );
        }
    }
    out.finish()
}

fn judge_import(out: &mut Collector, full: &str, class: &Class, offset: u64, options: &Options) {
    let evidence = Some(full.to_owned());
    match class {
        Class::Trivial => {}
        Class::WeightsOnly if options.weights_only_safe => out.add(
            Verdict::Safe,
            "pickle/weights-only-reconstructor",
            Severity::Info,
            format!("imports tensor/array reconstructor {full} (torch weights_only set)"),
            offset,
            evidence,
        ),
        Class::WeightsOnly => out.add(
            Verdict::Review,
            "pickle/allowed-reconstructor",
            Severity::Low,
            format!("imports allow-listed tensor/array reconstructor {full}"),
            offset,
            evidence,
        ),
        Class::Reconstructor => out.add(
            Verdict::Review,
            "pickle/allowed-reconstructor",
            Severity::Low,
            format!("imports allow-listed reconstructor {full}"),
            offset,
            evidence,
        ),
        Class::Denied { target, reason } => {
            let via = if target == full {
                String::new()
            } else {
                format!(" (resolves to {target})")
            };
            out.add(
                Verdict::Malicious,
                "pickle/denied-global",
                Severity::Critical,
                format!("imports {full}{via}: {reason}"),
                offset,
                evidence,
            );
        }
        Class::DunderWalk { part } => out.add(
            Verdict::Malicious,
            "pickle/dunder-walk",
            Severity::Critical,
            format!("imports {full}, walking into `{part}`"),
            offset,
            evidence,
        ),
        Class::SuspiciousWalk { reason } => out.add(
            Verdict::Malicious,
            "pickle/suspicious-walk",
            Severity::High,
            format!("imports {full}: {reason}"),
            offset,
            evidence,
        ),
        Class::DottedWalk => out.add(
            Verdict::Review,
            "pickle/dotted-walk",
            Severity::Medium,
            format!("imports {full} through an attribute walk not on the allow-list"),
            offset,
            evidence,
        ),
        Class::Unknown => out.add(
            Verdict::Review,
            "pickle/unknown-global",
            Severity::Medium,
            format!("imports {full}, which is not on the allow-list"),
            offset,
            evidence,
        ),
    }
}

fn kind_name(kind: CallKind) -> &'static str {
    match kind {
        CallKind::Reduce => "REDUCE",
        CallKind::Inst => "INST",
        CallKind::Obj => "OBJ",
        CallKind::NewObj => "NEWOBJ",
        CallKind::NewObjEx => "NEWOBJ_EX",
        CallKind::BuildOnGlobal => "BUILD",
        _ => "call",
    }
}

fn judge_call(out: &mut Collector, call: &fmt::Call, splits: &HashMap<String, (String, String)>) {
    let via = kind_name(call.kind);
    let Some(name) = &call.callable else {
        out.add(
            Verdict::Malicious,
            "pickle/unresolved-call",
            Severity::High,
            format!(
                "{via} calls a computed {} whose target cannot be resolved",
                call.callable_kind
            ),
            call.offset,
            Some(call.callable_kind.to_owned()),
        );
        return;
    };
    if call.kind == CallKind::BuildOnGlobal {
        out.add(
            Verdict::Malicious,
            "pickle/build-on-global",
            Severity::Critical,
            format!("BUILD sets state on the global object {name} (setattr gadget)"),
            call.offset,
            Some(name.clone()),
        );
        return;
    }
    let class = match splits.get(name) {
        Some((m, q)) => names::classify(m, q),
        None => names::classify_dotted(name),
    };
    let evidence = Some(name.clone());
    match class {
        Class::Denied { .. } | Class::DunderWalk { .. } | Class::SuspiciousWalk { .. } => {
            let why = match &class {
                Class::Denied { target, reason } if target != name => {
                    format!(" (resolves to {target}: {reason})")
                }
                Class::Denied { reason, .. } => format!(": {reason}"),
                Class::DunderWalk { part } => format!(" (walks into `{part}`)"),
                Class::SuspiciousWalk { reason } => format!(" ({reason})"),
                _ => String::new(),
            };
            out.add(
                Verdict::Malicious,
                "pickle/denied-call",
                Severity::Critical,
                format!("{via} calls {name}{why}"),
                call.offset,
                evidence,
            );
        }
        Class::Trivial => {
            if matches!(name.as_str(), "_codecs.encode" | "codecs.encode")
                && !latin1_args(&call.args)
            {
                out.add(
                    Verdict::Review,
                    "pickle/codecs-encode-args",
                    Severity::Low,
                    format!("{via} calls {name} with arguments other than (str, 'latin1')"),
                    call.offset,
                    evidence,
                );
            }
        }
        Class::WeightsOnly | Class::Reconstructor => {}
        Class::DottedWalk | Class::Unknown => out.add(
            Verdict::Review,
            "pickle/unknown-call",
            Severity::Medium,
            format!("{via} calls {name}, which is not on the allow-list"),
            call.offset,
            evidence,
        ),
    }
}

fn latin1_args(args: &[Arg]) -> bool {
    match args {
        [Arg::Str(_) | Arg::LongStr(_), Arg::Str(enc)] => {
            matches!(
                enc.to_ascii_lowercase().as_str(),
                "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1"
            )
        }
        _ => false,
    }
}

fn arg_text(arg: &Arg) -> String {
    match arg {
        Arg::Str(s) => s.clone(),
        Arg::Global(g) => g.clone(),
        Arg::Tuple(n) => format!("tuple of {n}"),
        other => format!("{other:?}"),
    }
}

/// Collects findings, de-duplicating by (rule, evidence) and counting repeats.
#[derive(Default)]
struct Collector {
    report: Report,
    seen: HashMap<(&'static str, Option<String>), (usize, u64)>,
}

impl Collector {
    fn add(
        &mut self,
        verdict: Verdict,
        rule: &'static str,
        severity: Severity,
        message: String,
        offset: u64,
        evidence: Option<String>,
    ) {
        self.add_opt(verdict, rule, severity, message, Some(offset), evidence);
    }

    fn add_opt(
        &mut self,
        verdict: Verdict,
        rule: &'static str,
        severity: Severity,
        message: String,
        offset: Option<u64>,
        evidence: Option<String>,
    ) {
        let key = (rule, evidence.clone());
        if let Some((_, count)) = self.seen.get_mut(&key) {
            *count += 1;
            self.report.verdict = self.report.verdict.max(verdict);
            return;
        }
        self.seen.insert(key, (self.report.findings.len(), 1));
        let finding = Finding {
            rule: rule.to_owned(),
            severity,
            message,
            member: None,
            offset,
            evidence,
        };
        self.report.add(verdict, finding);
    }

    fn finish(mut self) -> Report {
        for (index, count) in self.seen.values() {
            if *count > 1
                && let Some(f) = self.report.findings.get_mut(*index)
            {
                f.message
                    .push_str(&format!(" ({count} occurrences; first shown)"));
            }
        }
        self.report.findings.sort_by_key(|f| f.offset);
        self.report
    }
}

/// Fuzz entry point: analyses and judges `data` with default limits, and checks the invariants
/// a caller relies on: the VM stays within its limits, and a stream that did not end cleanly is
/// never `safe` or `review` unless a payload made it `malicious`.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    use rampart_formats::pickle::Status;
    let limits = Limits::default();
    let analysis = rampart_formats::pickle::analyze(data, &limits);
    assert!(analysis.stats.opcodes <= limits.max_opcodes, "opcode limit");
    assert!(
        analysis.stats.max_stack <= limits.max_stack_depth,
        "stack limit"
    );
    assert!(
        analysis.stats.max_memo <= limits.max_memo_entries,
        "memo limit"
    );
    assert!(
        analysis.stats.retained_bytes <= limits.max_retained_bytes,
        "retention limit"
    );
    let report = judge(&analysis);
    // An amplification past the limit is reported (or the walk stopped at a limit).
    assert!(
        analysis.stats.max_expanded <= limits.max_expanded_size || report.verdict >= Verdict::Error,
        "memo amplification missed"
    );
    if matches!(
        analysis.status,
        Status::Broken(_) | Status::Truncated(_) | Status::LimitExceeded(_)
    ) {
        assert!(
            matches!(report.verdict, Verdict::Error | Verdict::Malicious),
            "a damaged stream was judged {}",
            report.verdict
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_args_only_for_constant_latin1() {
        assert!(latin1_args(&[
            Arg::Str("x".into()),
            Arg::Str("latin1".into())
        ]));
        assert!(latin1_args(&[
            Arg::LongStr(9000),
            Arg::Str("LATIN-1".into())
        ]));
        assert!(!latin1_args(&[
            Arg::Str("x".into()),
            Arg::Str("rot13".into())
        ]));
        assert!(!latin1_args(&[
            Arg::CallResult(None),
            Arg::Str("latin1".into())
        ]));
        assert!(!latin1_args(&[Arg::Str("x".into())]));
    }

    #[test]
    fn collector_deduplicates_and_keeps_the_worst_verdict() {
        let mut c = Collector::default();
        c.add(
            Verdict::Review,
            "r",
            Severity::Low,
            "m".into(),
            9,
            Some("e".into()),
        );
        c.add(
            Verdict::Malicious,
            "r",
            Severity::Low,
            "m".into(),
            3,
            Some("e".into()),
        );
        c.add(
            Verdict::Review,
            "r",
            Severity::Low,
            "other".into(),
            1,
            Some("f".into()),
        );
        let r = c.finish();
        assert_eq!(r.verdict, Verdict::Malicious);
        assert_eq!(r.findings.len(), 2);
        // Sorted by offset; the first occurrence is kept and counted.
        assert_eq!(r.findings[0].offset, Some(1));
        assert_eq!(r.findings[1].offset, Some(9));
        assert!(r.findings[1].message.contains("2 occurrences"));
    }

    #[test]
    fn empty_analysis_is_safe_and_clean() {
        let a = fmt::analyze(b"N.", &Limits::default());
        let r = judge(&a);
        assert_eq!(r.verdict, Verdict::Safe);
        assert!(r.findings.is_empty());
    }
}
