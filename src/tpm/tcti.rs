//! Choice of the TCTI (TPM Command Transmission Interface) string that names the TPM to open.

use std::fmt;

/// Environment variables read for the TCTI, in order of precedence.
pub const TCTI_ENV_VARS: [&str; 3] = ["SEALDESK_TCTI", "TPM2TOOLS_TCTI", "TCTI"];

/// TCTI used when neither `--tcti` nor any environment variable names one:
/// the kernel's resource manager, which shares the TPM between processes.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// Source of the TCTI string, named in messages such as "from environment variable TCTI".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TctiOrigin {
    /// The `--tcti` command-line option.
    CommandLine,
    /// One of [`TCTI_ENV_VARS`].
    Environment(&'static str),
    /// [`DEFAULT_TCTI`].
    Default,
}

impl fmt::Display for TctiOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TctiOrigin::CommandLine => f.write_str("--tcti"),
            TctiOrigin::Environment(name) => write!(f, "environment variable {name}"),
            TctiOrigin::Default => f.write_str("default"),
        }
    }
}

/// A TCTI string and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TctiSelection {
    /// TCTI configuration as libtss2 parses it, e.g. `swtpm:host=127.0.0.1,port=2321`.
    pub tcti: String,
    /// Source of `tcti`.
    pub origin: TctiOrigin,
}

impl TctiSelection {
    /// Builds a selection for a TCTI string given on the command line.
    pub fn from_command_line(tcti: impl Into<String>) -> Self {
        TctiSelection {
            tcti: tcti.into(),
            origin: TctiOrigin::CommandLine,
        }
    }

    /// Returns the TCTI module name, the part before the first `:` (`swtpm`, `device`, ...).
    pub fn module(&self) -> &str {
        self.tcti.split(':').next().unwrap_or_default()
    }

    /// Returns true for a direct connection to a TPM simulator (swtpm or mssim TCTI).
    ///
    /// Such a connection has no resource manager, so the TPM has at most 3 object
    /// slots and keeps objects left behind by earlier processes.
    pub fn is_simulator(&self) -> bool {
        matches!(self.module(), "swtpm" | "mssim")
    }

    /// Returns true for a TPM character device (`device:` TCTI).
    pub fn is_device(&self) -> bool {
        self.module() == "device"
    }
}

impl fmt::Display for TctiSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.tcti, self.origin)
    }
}

/// Resolves the TCTI: `explicit` (the `--tcti` value), else the first non-empty
/// variable of [`TCTI_ENV_VARS`], else [`DEFAULT_TCTI`].
pub fn resolve_tcti(explicit: Option<&str>) -> TctiSelection {
    resolve_tcti_with(explicit, |name| std::env::var(name).ok())
}

/// Resolves the TCTI like [`resolve_tcti`], reading variables through `lookup`.
pub fn resolve_tcti_with(
    explicit: Option<&str>,
    lookup: impl Fn(&str) -> Option<String>,
) -> TctiSelection {
    if let Some(tcti) = explicit.filter(|value| !value.trim().is_empty()) {
        return TctiSelection::from_command_line(tcti.trim());
    }

    for name in TCTI_ENV_VARS {
        if let Some(value) = lookup(name) {
            let value = value.trim();
            if !value.is_empty() {
                return TctiSelection {
                    tcti: value.to_owned(),
                    origin: TctiOrigin::Environment(name),
                };
            }
        }
    }

    TctiSelection {
        tcti: DEFAULT_TCTI.to_owned(),
        origin: TctiOrigin::Default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup_in(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn command_line_wins_over_environment() {
        let lookup = lookup_in(&[("SEALDESK_TCTI", "swtpm:port=1")]);
        let selection = resolve_tcti_with(Some("swtpm:port=2"), lookup);
        assert_eq!(selection.tcti, "swtpm:port=2");
        assert_eq!(selection.origin, TctiOrigin::CommandLine);
    }

    #[test]
    fn environment_order_is_respected() {
        let lookup = lookup_in(&[
            ("TCTI", "mssim:port=3"),
            ("TPM2TOOLS_TCTI", "swtpm:port=2"),
            ("SEALDESK_TCTI", "swtpm:port=1"),
        ]);
        let selection = resolve_tcti_with(None, &lookup);
        assert_eq!(selection.tcti, "swtpm:port=1");
        assert_eq!(selection.origin, TctiOrigin::Environment("SEALDESK_TCTI"));

        let lookup = lookup_in(&[("TCTI", "mssim:port=3"), ("TPM2TOOLS_TCTI", "swtpm:port=2")]);
        let selection = resolve_tcti_with(None, &lookup);
        assert_eq!(selection.origin, TctiOrigin::Environment("TPM2TOOLS_TCTI"));

        let lookup = lookup_in(&[("TCTI", "mssim:port=3")]);
        let selection = resolve_tcti_with(None, &lookup);
        assert_eq!(selection.tcti, "mssim:port=3");
        assert_eq!(selection.origin, TctiOrigin::Environment("TCTI"));
    }

    #[test]
    fn empty_values_are_skipped() {
        let lookup = lookup_in(&[("SEALDESK_TCTI", " "), ("TCTI", "swtpm:port=9")]);
        let selection = resolve_tcti_with(Some(""), lookup);
        assert_eq!(selection.tcti, "swtpm:port=9");
        assert_eq!(selection.origin, TctiOrigin::Environment("TCTI"));
    }

    #[test]
    fn default_is_resource_manager() {
        let selection = resolve_tcti_with(None, |_| None);
        assert_eq!(selection.tcti, "device:/dev/tpmrm0");
        assert_eq!(selection.origin, TctiOrigin::Default);
        assert!(selection.is_device());
        assert!(!selection.is_simulator());
    }

    #[test]
    fn module_kinds() {
        let swtpm = TctiSelection::from_command_line("swtpm:host=127.0.0.1,port=2321");
        assert_eq!(swtpm.module(), "swtpm");
        assert!(swtpm.is_simulator());
        assert!(!swtpm.is_device());

        let mssim = TctiSelection::from_command_line("mssim");
        assert!(mssim.is_simulator());
    }

    #[test]
    fn display_names_origin() {
        let selection = TctiSelection {
            tcti: "swtpm:port=5".into(),
            origin: TctiOrigin::Environment("TCTI"),
        };
        assert_eq!(
            selection.to_string(),
            "swtpm:port=5 (from environment variable TCTI)"
        );
    }
}
