//! Cutting a node off its CQL server mid-traffic: a dedicated server (never the shared one)
//! is frozen with SIGSTOP. Requests that need the store answer a clean 503 with Retry-After
//! in bounded time, `/readyz` goes red, and after SIGCONT everything recovers by itself,
//! without restarting the node.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use commonrock_tests::{eventually, Answer, Node, NodeOptions};
use serde_json::json;

/// A CQL server of this test's own, stopped when dropped (also when the test fails).
struct DedicatedServer {
    run_dir: tempfile::TempDir,
    nodes: String,
    pid: u32,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("cql-server")
}

impl DedicatedServer {
    fn start() -> DedicatedServer {
        let run_dir = tempfile::tempdir().expect("run dir");
        let out = std::process::Command::new(script())
            .arg("start")
            .arg("--run-dir")
            .arg(run_dir.path())
            .env_remove("COMMONROCK_CQL_RUN_DIR")
            .output()
            .expect("scripts/cql-server runs");
        assert!(
            out.status.success(),
            "dedicated CQL server did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let exports = String::from_utf8_lossy(&out.stdout).to_string();
        let value = |name: &str| {
            exports
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("{name} in {exports}"))
                .trim()
                .to_string()
        };
        DedicatedServer {
            nodes: value("COMMONROCK_TEST_CQL_NODES"),
            pid: value("COMMONROCK_CQL_PID").parse().expect("pid"),
            run_dir,
        }
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} {}", self.pid);
    }
}

impl Drop for DedicatedServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-CONT")
            .arg(self.pid.to_string())
            .status();
        let _ = std::process::Command::new(script())
            .arg("stop")
            .arg("--run-dir")
            .arg(self.run_dir.path())
            .env_remove("COMMONROCK_CQL_RUN_DIR")
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_gives_clean_503s_and_recovers_without_a_restart() {
    let server = DedicatedServer::start();
    let node = Node::start_with(
        NodeOptions::default()
            .cql(server.nodes.clone(), "cr_cql_outage")
            .arg("--store-timeout-ms")
            .arg("1500"),
    )
    .await;
    let p = node.project(json!({})).await;
    assert_eq!(p.signup("before", "password123").await.status, 201);

    server.signal("STOP");
    // Mid-traffic: a burst of signups and logins that all need the store.
    let started = Instant::now();
    let burst = (0..8).map(|i| {
        let p = p.clone();
        async move {
            if i % 2 == 0 {
                p.signup(&format!("during-{i}"), "password123").await
            } else {
                p.login("before", "password123").await
            }
        }
    });
    let answers: Vec<Answer> = futures_util::future::join_all(burst).await;
    let took = started.elapsed();
    for a in &answers {
        assert_eq!(a.status, 503, "{:?}", a.body);
        assert_eq!(
            a.body,
            json!({"detail":{"code":"service_unavailable","message":"Service temporarily unavailable"}})
        );
        assert!(a.header("retry-after").is_some(), "503 carries Retry-After");
    }
    assert!(
        took < Duration::from_secs(30),
        "answers come in bounded time, not a hang: {took:?}"
    );
    let red = eventually(Duration::from_secs(30), || async {
        let r = node.http.get(node.url("/readyz")).send().await.ok()?;
        (r.status().as_u16() == 503).then_some(())
    })
    .await;
    assert!(red.is_some(), "/readyz goes red while the store is away");

    server.signal("CONT");
    let green = eventually(Duration::from_secs(90), || async {
        let r = node.http.get(node.url("/readyz")).send().await.ok()?;
        (r.status().as_u16() == 200).then_some(())
    })
    .await;
    assert!(green.is_some(), "/readyz turns green again by itself");
    let back = eventually(Duration::from_secs(60), || async {
        let a = p.signup("after", "password123").await;
        (a.status == 201).then_some(a)
    })
    .await;
    assert!(
        back.is_some(),
        "signups work again without restarting the node"
    );
    assert_eq!(p.login("before", "password123").await.status, 200);
    // A signup refused during the outage either never happened or happened completely:
    // its id is free, or taken and usable, never half-made.
    for i in [0, 2, 4, 6] {
        let id = format!("during-{i}");
        let again = p.signup(&id, "password123").await.status;
        assert!(again == 201 || again == 409, "{id}: {again}");
        assert_eq!(p.login(&id, "password123").await.status, 200, "{id}");
    }
}
