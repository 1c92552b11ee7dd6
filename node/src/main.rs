//! `commonrock`: one binary for serving a node and the offline admin helpers.

use std::process::ExitCode;

/// Many small short-lived allocations per request (JSON, headers): mimalloc serves them from
/// per-thread pages where glibc malloc took ~10 % of the introspection profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use commonrock_actors::crypto::tokens::ServerSecrets;
use commonrock_node::config::{AdminCommand, Cli, Command, Config, LogFormat, SecretCommand};
use commonrock_node::server;

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        // Store reads of the embedded store run on the blocking pool; tokio's default of 512
        // threads let a burst of cache misses grow the node by about 1 MiB per thread.
        .max_blocking_threads(32)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("commonrock: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                let config = Config::from_args(*args).map_err(|e| e.to_string())?;
                init_logs(config.log_format);
                server::run(config, server::shutdown_signal())
                    .await
                    .map_err(|e| e.to_string())
            }
            Command::Admin(AdminCommand::SeedSessions(args)) => {
                let done = commonrock_node::seed::seed_sessions(*args).await?;
                println!("{done}");
                Ok(())
            }
            Command::Admin(AdminCommand::MintToken { data_dir, name }) => {
                let token = mint_token(&data_dir, name).await?;
                println!("{token}");
                Ok(())
            }
            Command::Secret(SecretCommand::Generate { out }) => {
                server::write_private(&out, &ServerSecrets::generate_file_text())
                    .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
                println!("wrote a new server secret to {}", out.display());
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("commonrock: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Mints an admin token straight into a stopped node's embedded store.
async fn mint_token(data_dir: &std::path::Path, name: String) -> Result<String, String> {
    use commonrock_actors::crypto::secrets::{
        display_prefix, random_credential, sha256, ADMIN_TOKEN_PREFIX,
    };
    use commonrock_actors::store::Store;
    let store = commonrock_actors::store::embedded::EmbeddedStore::open(data_dir).map_err(|e| {
        format!(
            "cannot open store in {} (is the node running?): {e}",
            data_dir.display()
        )
    })?;
    let secret = random_credential(ADMIN_TOKEN_PREFIX, 32);
    let token = commonrock_actors::model::AdminToken {
        id: uuid::Uuid::now_v7(),
        name,
        token_hash: sha256(secret.as_bytes()),
        token_prefix: display_prefix(&secret, ADMIN_TOKEN_PREFIX),
        created_at: chrono::Utc::now().timestamp(),
        revoked_at: None,
    };
    store
        .put_admin_token(&token)
        .await
        .map_err(|e| format!("cannot store the token: {e}"))?;
    Ok(secret)
}
