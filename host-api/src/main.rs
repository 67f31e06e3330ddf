//! `plugboard`: Plugboard's command-line entry point.
//!
//! - `plugboard serve [--demo]` serves the HTTP control plane;
//! - `plugboard demo` runs the embedded sample plugins as a pipeline on sample data;
//! - `plugboard run` invokes one plugin locally, as a plugin author tries a build;
//! - `plugboard keygen | sign | verify | inspect` manage publisher keys and signed plugin files;
//! - `plugboard push | ls | activate | invoke | keys | audit | flow | dlq` talk to a server.
//!
//! Exit status: 0 on success, 1 when the command fails, 2 when `verify` rejects a file.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use plugboard_host_api::cli::{Cli, Command, Connection, KeysCommand};
use plugboard_host_api::client::{self, ApiClient};
use plugboard_host_api::{demo, flow_commands, run, server, sign};

async fn client_command(
    connection: &Connection,
    call: impl AsyncFnOnce(&ApiClient) -> Result<serde_json::Value, client::ClientError>,
    render: fn(&serde_json::Value) -> String,
) -> anyhow::Result<()> {
    let client = connection.client()?;
    let answer = call(&client).await?;
    connection.print(&answer, render)
}

async fn serve(
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
        println!("  TOKEN=$(cat {})", token_file.display());
        println!("  curl -s -H \"authorization: Bearer $TOKEN\" {base}/v1/plugins");
        println!(
            "  curl -s -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\\n    -d '{{\"records\": [{{\"orderId\": \"A1\", \"customerId\": 7, \"orderTotal\": 1250}}]}}' {base}/v1/plugins/json-mapper/invoke"
        );
        println!(
            "  curl -s -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\\n    -d '{{\"records\": [{{\"total\": 50}}, {{\"total\": 500}}]}}' {base}/v1/plugins/filter/invoke"
        );
        println!("  curl -s {base}/metrics | grep plugboard_");
        println!("  curl -s -H \"authorization: Bearer $TOKEN\" {base}/v1/audit\n");
    }
    server.run(server::shutdown_signal()).await
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let outcome = match Cli::parse().command {
        Command::Demo => demo::run().await,
        Command::Serve { data, listen, config, demo, allow_unsigned } => {
            serve(data, listen, config, demo, allow_unsigned).await
        }
        Command::Run { component, manifest, config, allow_hosts, input } => {
            run::run(component, manifest, config, allow_hosts, input).await
        }
        Command::Keygen { out } => sign::keygen(&out),
        Command::Sign { key, manifest, input, out } => sign::sign(&key, &manifest, &input, &out),
        Command::Verify { pubkey, file } => match sign::verify(&pubkey, &file) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(rejection)) => {
                eprintln!("rejected: {rejection}");
                return ExitCode::from(2);
            }
            Err(err) => Err(err),
        },
        Command::Inspect { file, json } => sign::inspect(&file, json),
        Command::Push { file, activate, connection } => {
            client_command(
                &connection,
                async |c| c.push(&file, activate).await,
                |a| {
                    format!(
                        "{} {} uploaded ({}), digest {}",
                        client::text(&a["name"]),
                        client::text(&a["version"]),
                        client::text(&a["status"]),
                        client::text(&a["digest"])
                    )
                },
            )
            .await
        }
        Command::Ls { connection } => {
            client_command(&connection, async |c| c.list().await, client::render_plugins).await
        }
        Command::Activate { name, version, allow_rollback, connection } => {
            client_command(
                &connection,
                async |c| c.activate(&name, &version, allow_rollback).await,
                |a| format!("{} now runs {}", client::text(&a["name"]), client::text(&a["active_version"])),
            )
            .await
        }
        Command::Invoke { name, input, connection } => {
            let text = if input.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(&input)
            };
            match text
                .map_err(anyhow::Error::from)
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(Into::into))
            {
                Ok(records) => {
                    client_command(
                        &connection,
                        async |c| c.invoke(&name, records).await,
                        |a| serde_json::to_string_pretty(a).unwrap_or_default(),
                    )
                    .await
                }
                Err(err) => Err(anyhow::anyhow!("input must be a JSON array of records: {err}")),
            }
        }
        Command::Keys { command, connection } => match command {
            KeysCommand::Add { public_key, name } => {
                client_command(
                    &connection,
                    async |c| c.keys_add(&public_key, &name).await,
                    |a| format!("trusted key {} ({})", client::text(&a["key_id"]), client::text(&a["name"])),
                )
                .await
            }
            KeysCommand::Ls => client_command(&connection, async |c| c.keys_list().await, client::render_keys).await,
            KeysCommand::Revoke { id } => {
                client_command(
                    &connection,
                    async |c| c.keys_revoke(&id).await,
                    |a| format!("revoked key {}", client::text(&a["key_id"])),
                )
                .await
            }
        },
        Command::Flow { command, connection } => {
            async {
                let (answer, render) = flow_commands::flow(&connection.client()?, &command).await?;
                connection.print(&answer, render)
            }
            .await
        }
        Command::Dlq { command, connection } => {
            async {
                let (answer, render) = flow_commands::dlq(&connection.client()?, &command).await?;
                connection.print(&answer, render)
            }
            .await
        }
        Command::Audit { connection } => {
            client_command(&connection, async |c| c.audit().await, client::render_audit).await
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
