//! `GET /admin/v1/cluster`: the cluster as this node sees it (SPEC §9).

use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::AppState;
use crate::http::{Answer, Handled};

#[derive(Serialize, ToSchema)]
pub struct ClusterView {
    node_id: String,
    /// Ring epoch this node routes by (0 for a node on the embedded store).
    epoch: u64,
    members: Vec<MemberView>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    node_id: String,
    /// Address of the member's cluster listener.
    advertise: String,
    /// `up`, `joining` or `leaving`.
    status: &'static str,
    /// The member's own clock at its last heartbeat.
    last_heartbeat: String,
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp(ms.div_euclid(1000), 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// `GET /admin/v1/cluster`
#[utoipa::path(get, path = "/admin/v1/cluster", tag = "admin", security(("admin" = []), ("portal" = [])),
    responses((status = 200, description = "The cluster as this node sees it (SPEC §9)", body = ClusterView)))]
pub fn view(state: &AppState) -> Handled {
    let m = &state.membership;
    let members = m.members();
    let mut out: Vec<MemberView> = members
        .iter()
        .map(|mm| MemberView {
            node_id: mm.node_id.clone(),
            advertise: mm.advertise.clone(),
            status: mm.status.as_str(),
            last_heartbeat: time(mm.last_heartbeat_ms),
        })
        .collect();
    if out.is_empty() {
        // A cluster of one has no heartbeat rows: it is its only member.
        out.push(MemberView {
            node_id: m.local().to_string(),
            advertise: String::new(),
            status: if m.joined() { "up" } else { "joining" },
            last_heartbeat: time(chrono::Utc::now().timestamp_millis()),
        });
    }
    Answer::json(
        StatusCode::OK,
        &ClusterView {
            node_id: m.local().to_string(),
            epoch: m.epoch(),
            members: out,
        },
    )
}
