//! `commonrock`: one binary for serving a node and the offline admin helpers.

use std::process::ExitCode;

/// Many small short-lived allocations per request (JSON, headers): mimalloc serves them from
/// per-thread pages where glibc malloc took ~10 % of the introspection profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use commonrock_actors::crypto::tokens::ServerSecrets;
use commonrock_node::config::{AdminCommand, Cli, Command, Config, SecretCommand};
use commonrock_node::server;

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
                commonrock_node::logs::init(config.log_format);
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
            Command::Admin(AdminCommand::CreateUser { data_dir, email }) => {
                let id = create_admin_user(&data_dir, &email).await?;
                println!("created admin user {id}; sign in at /portal/ and enrol TOTP");
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

/// Creates an admin user straight in a stopped node's embedded store.
async fn create_admin_user(data_dir: &std::path::Path, email: &str) -> Result<uuid::Uuid, String> {
    use commonrock_actors::engine::portal::normalise_email;
    use commonrock_actors::model::{AdminUser, Inserted};
    use commonrock_actors::store::portal::PortalStore;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']);
    let chars = password.chars().count();
    if !(8..=1024).contains(&chars) {
        return Err(
            "the password must have 8 to 1024 characters (give it on standard input)".into(),
        );
    }
    let email = normalise_email(email);
    if !email.contains('@') || email.contains(':') || email.chars().any(char::is_whitespace) {
        return Err(format!("{email:?} is not an email address"));
    }
    let store = commonrock_actors::store::embedded::EmbeddedStore::open(data_dir).map_err(|e| {
        format!(
            "cannot open store in {} (is the node running? use POST /admin/v1/admin-users then): {e}",
            data_dir.display()
        )
    })?;
    let password_hash = commonrock_actors::crypto::password::hash_now(password.as_bytes())
        .map_err(|e| format!("cannot hash the password: {e:?}"))?;
    let user = AdminUser {
        id: uuid::Uuid::now_v7(),
        email,
        password_hash,
        disabled: false,
        totp: None,
        totp_pending: None,
        totp_last_step: 0,
        recovery_codes: vec![],
        created_at: chrono::Utc::now().timestamp(),
        version: 0,
    };
    match store.insert_admin_user(&user).await {
        Ok(Inserted::Created) => Ok(user.id),
        Ok(Inserted::AlreadyExists) => Err(format!("an admin user {} already exists", user.email)),
        Err(e) => Err(format!("cannot store the admin user: {e}")),
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
