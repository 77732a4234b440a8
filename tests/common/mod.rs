pub mod chain;
pub mod swtpm;

/// The Go reference logger's source: `shared/` beside the repository (as CI
/// lays it out), else the development machine's copy.
#[allow(dead_code)] // Each test binary compiles this module; not all use it.
pub fn reference_dir() -> Option<std::path::PathBuf> {
    let beside =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/sec006/reference");
    [
        beside,
        std::path::PathBuf::from("/work/shared/sec006/reference"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}
