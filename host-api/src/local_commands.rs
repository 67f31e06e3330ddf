//! `plugboard serve`: the one long-running command, which prints where it listens and, with
//! `--demo`, how to try the sample plugins it installed.
//!
//! The other local commands (`demo`, `run`, `keygen`, `sign`, `verify`, `inspect`) are each in
//! their own module; this one is here because its setup is CLI work (merging flags over a config
//! file, the first-start messages), not server work.

use crate::{demo, server};
use std::path::PathBuf;

/// Serves the control plane until Ctrl-C or SIGTERM: `--data`, `--listen` and `--allow-unsigned`
/// override the config file's settings.
///
/// # Errors
/// A bad config file, a data directory or listen address that cannot be used, demo setup failures.
pub async fn serve(
    data: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
    config: Option<PathBuf>,
    demo: bool,
    allow_unsigned: bool,
) -> anyhow::Result<()> {
    let mut settings = match config {
        Some(path) => server::ServeConfig::from_file(&path)?,
        None => server::ServeConfig::default(),
    };
    settings.data = data.or(settings.data);
    settings.listen = listen.or(settings.listen);
    settings.allow_unsigned |= allow_unsigned;
    let server = server::start(&settings, Default::default()).await?;
    let data_dir = settings.data_dir();
    if demo {
        demo::install_samples(&server.state, &data_dir).await?;
    }
    let base = format!("http://{}", server.addr);
    println!("plugboard listening on {base} (data: {})", data_dir.display());
    if let Some(path) = &server.created_token_file {
        println!("created an admin token: {} (keep it private; shown only on first start)", path.display());
    }
    if demo {
        let token_file = data_dir.join("admin-token");
        println!("\nsample plugins are installed and active. Try:\n");
        println!("  export PLUGBOARD_SERVER={base} PLUGBOARD_TOKEN=$(cat {})", token_file.display());
        println!("  plugboard ls");
        println!(
            "  echo '[{{\"orderId\": \"A1\", \"customerId\": 7, \"orderTotal\": 1250}}]' | plugboard invoke json-mapper --input -"
        );
        println!("  echo '[{{\"total\": 50}}, {{\"total\": 500}}]' | plugboard invoke filter --input -");
        println!("  plugboard audit");
        println!("  curl -s {base}/metrics | grep plugboard_\n");
    }
    server.run(server::shutdown_signal()).await
}
