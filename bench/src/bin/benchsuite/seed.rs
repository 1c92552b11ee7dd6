//! Seeding sessions into a store: offline with `commonrock admin seed-sessions` on a stopped
//! node, or through signups when that command is missing.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use crate::calls::signup;
use crate::server::{creds, Env, StoreKind};
use crate::{say, LOGIN_PASSWORD, PROJECT};

fn has_seed_command(env: &Env) -> bool {
    Command::new(env.bin("commonrock"))
        .args(["admin", "--help"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("seed-sessions"))
}

/// Seeds `args.sessions` sessions into `store`: offline with `admin seed-sessions` on a stopped
/// node, or (when that command is missing) through real signups, capped because each costs an
/// Argon2 hash. Returns the seeding figures and leaves the node stopped.
pub fn seed(env: &Env, store: &StoreKind, tokens: &Path, tag: &str) -> Result<Value, String> {
    let n = env.args.sessions;
    // The first start creates the demo project the sessions belong to.
    let node = env.start_node(store, &format!("node-{tag}-setup.log"))?;
    let started = Instant::now();
    if has_seed_command(env) {
        node.stop()?;
        let users = n.div_ceil(100).max(1);
        let out = Command::new(env.bin("commonrock"))
            .args(["admin", "seed-sessions", "--project", PROJECT])
            .args(["--count", &n.to_string(), "--users", &users.to_string()])
            .arg("--out")
            .arg(tokens)
            .arg("--secret-file")
            .arg(&env.secret)
            .args(store.args())
            .output()
            .map_err(|e| format!("cannot run seed-sessions: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "seed-sessions failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(
            json!({"method": "admin seed-sessions", "sessions": n, "users": users,
                  "seconds": started.elapsed().as_secs_f64()}),
        )
    } else {
        let cap = n.min(500);
        say(format!(
            "`commonrock admin seed-sessions` is missing: seeding {cap} sessions through signups"
        ));
        let c = creds(&node)?;
        let mut file = std::fs::File::create(tokens).map_err(|e| e.to_string())?;
        let mut made = 0;
        for i in 0.. {
            if made == cap {
                break;
            }
            if let Some(t) = signup(&node, &c, &format!("signup-{tag}-{i}"), LOGIN_PASSWORD)? {
                writeln!(file, "{t}").map_err(|e| e.to_string())?;
                made += 1;
            }
        }
        node.stop()?;
        Ok(json!({"method": "signup", "sessions": made, "users": made,
                  "seconds": started.elapsed().as_secs_f64()}))
    }
}
