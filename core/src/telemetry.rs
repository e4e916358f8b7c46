//! Logging setup shared by the binaries.

use tracing_subscriber::EnvFilter;

/// Installs a `tracing` subscriber writing to stderr. The filter comes from
/// `RUST_LOG` (default `info,rdkafka=warn,sqlx=warn`). Colours only on a
/// terminal: a log file or collector gets plain text it can grep.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(true).with_ansi(ansi).try_init();
}
