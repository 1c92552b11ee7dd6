//! The portal page in a real browser (headless Chromium driven by Playwright), against a real
//! node: `node/portal/e2e/portal.e2e.mjs` signs in with TOTP, creates a project, a public client
//! and a secret key (seen once), signs an end user up with the seed's curl, sees the user and its
//! session in the page, revokes it there, and sees the token's introspection go inactive.
//!
//! Needs Debian's `chromium` (`COMMONROCK_TEST_CHROMIUM`, else /usr/bin/chromium) and the page's
//! npm packages (`npm ci` in node/portal); `scripts/check` installs both.

use std::path::PathBuf;

use commonrock_tests::Node;

fn portal_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("node")
        .join("portal")
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("COMMONROCK_TEST_CHROMIUM")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found: run scripts/check (it installs Debian's chromium), or \
         `apt-get install chromium`, or set COMMONROCK_TEST_CHROMIUM",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_page_does_a_developers_job_in_a_real_browser() {
    let chromium = chromium();
    let dir = portal_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "the page's test packages are missing: run `npm ci` in {} (scripts/check does)",
        dir.display()
    );
    let node = Node::start().await;
    let shots = node.dir.join("screenshots");
    let out = tokio::process::Command::new("node")
        .arg("e2e/portal.e2e.mjs")
        .current_dir(&dir)
        .env("PORTAL_BASE_URL", &node.base)
        .env("ADMIN_TOKEN", &node.admin_token)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .await
        .expect("node (Node.js) runs the browser test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all 13 steps passed"), "{stdout}");
    for shot in [
        "portal-login.png",
        "portal-end-user.png",
        "portal-audit.png",
    ] {
        assert!(shots.join(shot).exists(), "{shot} saved");
    }
}
