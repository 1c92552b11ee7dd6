//! `/admin/v1/projects[/{slug}]` and the maintenance switches (per project and node-wide).

use commonrock_actors::model::{Project, ProjectSettings};
use commonrock_actors::tenant::{Applied, Change, ProjectView};
use commonrock_actors::DomainError;
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::{audit, project, AdminPrincipal};
use crate::api::AppState;
use crate::http::validation::{body_loc, validated, Fields, Issue};
use crate::http::{format_time, Answer, ApiError, Handled, Request};

/// Slugs that would collide with the node's own top-level paths.
const RESERVED_SLUGS: [&str; 6] = [
    "admin",
    "docs",
    "metrics",
    "healthz",
    "readyz",
    "openapi.json",
];

/// `^[a-z0-9][a-z0-9_-]{2,63}$` (SPEC §1).
pub fn valid_slug(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=64).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

pub fn slug_field(f: &mut Fields<'_>, name: &str) -> Option<String> {
    let slug = f.string(name, 3, 64)?;
    if !valid_slug(&slug) {
        f.push(Issue::value_error(
            name,
            "slug must match ^[a-z0-9][a-z0-9_-]{2,63}$",
        ));
        return None;
    }
    if RESERVED_SLUGS.contains(&slug.as_str()) {
        f.push(Issue::value_error(name, "slug is reserved"));
        return None;
    }
    Some(slug)
}

#[derive(Serialize)]
pub struct ProjectOut {
    pub id: uuid::Uuid,
    pub org_slug: String,
    pub slug: String,
    pub name: String,
    pub settings: ProjectSettings,
    pub maintenance: bool,
    pub created_at: String,
}

fn view(p: &Project, org_slug: &str) -> ProjectOut {
    ProjectOut {
        id: p.id,
        org_slug: org_slug.to_string(),
        slug: p.slug.clone(),
        name: p.name.clone(),
        settings: p.settings.clone(),
        maintenance: p.maintenance,
        created_at: format_time(p.created_at),
    }
}

#[derive(Serialize)]
struct ProjectList {
    projects: Vec<ProjectOut>,
}

/// Merges `patch` into `base` settings and checks the result; unknown keys are errors here
/// (a misspelt limit silently ignored would be a security bug).
fn settings_from(
    base: &ProjectSettings,
    patch: Option<&Value>,
) -> Result<ProjectSettings, ApiError> {
    let Some(patch) = patch else {
        return Ok(base.clone());
    };
    let mut merged =
        serde_json::to_value(base).map_err(|e| DomainError::Internal(e.to_string()))?;
    merge(&mut merged, patch);
    let settings: ProjectSettings = serde_json::from_value(merged)
        .map_err(|e| ApiError::validation(vec![Issue::value_error("settings", e.to_string())]))?;
    let mut problems = Vec::new();
    if settings.access_ttl_s == 0 {
        problems.push("access_ttl_s must be at least 1");
    }
    if settings.refresh_ttl_s < settings.access_ttl_s {
        problems.push("refresh_ttl_s must be at least access_ttl_s");
    }
    if settings.session_max_ttl_s < settings.refresh_ttl_s {
        problems.push("session_max_ttl_s must be at least refresh_ttl_s");
    }
    if settings.refresh_reuse_grace_s > 300 {
        problems.push("refresh_reuse_grace_s must be at most 300");
    }
    if settings.max_sessions_per_user == 0 {
        problems.push("max_sessions_per_user must be at least 1");
    }
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(ApiError::validation(
            problems
                .into_iter()
                .map(|p| Issue {
                    loc: body_loc("settings"),
                    msg: p.to_string(),
                    kind: "value_error".into(),
                    ctx: None,
                })
                .collect(),
        ))
    }
}

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

fn project_answer(status: StatusCode, applied: Applied, state: &AppState) -> Handled {
    match applied {
        Applied::Project(p) => {
            let org_slug = state
                .engine
                .tenants()
                .project(&p.slug)
                .map(|v| v.org_slug.clone())
                .unwrap_or_default();
            Answer::json(status, &view(&p, &org_slug))
        }
        _ => Err(DomainError::Internal("unexpected apply result".into()).into()),
    }
}

pub async fn collection(state: &AppState, req: &Request, who: &AdminPrincipal) -> Handled {
    if req.method == Method::GET {
        let tenants = state.engine.tenants();
        let mut list: Vec<&std::sync::Arc<ProjectView>> = tenants.projects.values().collect();
        list.sort_by(|a, b| a.project.slug.cmp(&b.project.slug));
        let projects = list.iter().map(|v| view(&v.project, &v.org_slug)).collect();
        return Answer::json(StatusCode::OK, &ProjectList { projects });
    }
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let org_slug = f.string("org_slug", 1, 64);
    let slug = slug_field(&mut f, "slug");
    let name = f.string("name", 1, 200);
    let settings = f.raw("settings");
    f.finish()?;
    let settings = settings_from(&ProjectSettings::default(), settings)?;
    let slug = validated(slug)?;
    let applied = state
        .engine
        .apply(Change::CreateProject {
            org_slug: validated(org_slug)?,
            slug: slug.clone(),
            name: validated(name)?,
            settings,
        })
        .await?;
    audit(state, who, "create_project", &slug);
    project_answer(StatusCode::CREATED, applied, state)
}

pub async fn one(state: &AppState, req: &Request, who: &AdminPrincipal, slug: &str) -> Handled {
    let current = project(state, slug)?;
    if req.method == Method::GET {
        return Answer::json(StatusCode::OK, &view(&current.project, &current.org_slug));
    }
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let patch = f.raw("settings");
    if patch.is_none() {
        f.push(Issue::missing(body_loc("settings")));
    }
    f.finish()?;
    let settings = settings_from(&current.project.settings, patch)?;
    let applied = state
        .engine
        .apply(Change::UpdateSettings {
            slug: slug.to_string(),
            settings,
        })
        .await?;
    audit(state, who, "update_project_settings", slug);
    project_answer(StatusCode::OK, applied, state)
}

#[derive(Serialize)]
struct Maintenance {
    enabled: bool,
}

/// `PUT {enabled}` switches maintenance for one project (`Some(slug)`) or the whole node;
/// `GET` reads it. Both switches are stored, so they hold across restarts.
pub async fn maintenance(
    state: &AppState,
    req: &Request,
    who: &AdminPrincipal,
    slug: Option<&str>,
) -> Handled {
    let current = match slug {
        Some(s) => project(state, s)?.project.maintenance,
        None => state.engine.tenants().maintenance,
    };
    if req.method == Method::GET {
        return Answer::json(StatusCode::OK, &Maintenance { enabled: current });
    }
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let enabled = f.bool("enabled", true);
    f.finish()?;
    let enabled = validated(enabled)?;
    let change = match slug {
        Some(s) => Change::SetProjectMaintenance {
            slug: s.to_string(),
            enabled,
        },
        None => Change::SetGlobalMaintenance { enabled },
    };
    state.engine.apply(change).await?;
    audit(state, who, "set_maintenance", slug.unwrap_or("*"));
    Answer::json(StatusCode::OK, &Maintenance { enabled })
}
