//! `/admin/v1/projects[/{slug}]` and the maintenance switches (per project and node-wide).

use commonrock_actors::model::{Limit, Project, ProjectSettings, RateLimits};
use commonrock_actors::tenant::{Applied, Change, ProjectView};
use commonrock_actors::DomainError;
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{audit, project, AdminPrincipal};
use crate::api::AppState;
use crate::http::schema::{CodedError, JsonBody};
use crate::http::validation::{body_loc, Fields, Issue};
use crate::http::{format_time, Answer, ApiError, Handled, Request};

/// Slugs that would collide with the node's own top-level paths.
const RESERVED_SLUGS: [&str; 7] = [
    "portal",
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

#[derive(Serialize, ToSchema)]
pub struct ProjectOut {
    pub id: uuid::Uuid,
    pub org_slug: String,
    pub slug: String,
    pub name: String,
    /// Every setting, with its current value.
    #[schema(value_type = Settings)]
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

#[derive(Serialize, ToSchema)]
pub struct ProjectList {
    projects: Vec<ProjectOut>,
}

/// Project settings (SPEC §3). In a request, the ones to change: each is merged into the
/// current settings, null or absent keeps it; an unknown name is a 422 (a misspelt limit
/// silently ignored would be a security bug). Every field is `ProjectSettings`'s, which a unit
/// test checks.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Access token lifetime (default 3600).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 4294967295.0)]
    pub access_ttl_s: Option<u32>,
    /// Refresh token lifetime, at least `access_ttl_s` (default 30 days).
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295.0)]
    pub refresh_ttl_s: Option<u32>,
    /// Window in which the previous refresh token returns the same successor (default 10).
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 300)]
    pub refresh_reuse_grace_s: Option<u32>,
    /// Absolute session lifetime, at least `refresh_ttl_s` (default 90 days).
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295.0)]
    pub session_max_ttl_s: Option<u32>,
    /// Live sessions per end user; the oldest is revoked first (default 100).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 4294967295.0)]
    pub max_sessions_per_user: Option<u32>,
    pub rate_limits: Option<RateLimitSettings>,
}

/// The named token buckets of a project (docs/operations.md).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub login_per_account_ip: Option<LimitSetting>,
    pub login_per_account: Option<LimitSetting>,
    pub login_per_ip: Option<LimitSetting>,
    pub signup_per_ip: Option<LimitSetting>,
    pub public_per_ip: Option<LimitSetting>,
    pub per_client: Option<LimitSetting>,
    pub per_secret_key: Option<LimitSetting>,
}

/// A token bucket: `burst` requests at once, refilled at `per_minute`; 0 in either turns the
/// limit off.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitSetting {
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295.0)]
    pub burst: Option<u32>,
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295.0)]
    pub per_minute: Option<u32>,
}

fn has_array(v: &Value) -> bool {
    match v {
        Value::Array(_) => true,
        Value::Object(m) => m.values().any(has_array),
        _ => false,
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

impl Settings {
    /// Reads `settings` of a body: absent or null → None.
    fn read(f: &mut Fields<'_>) -> Option<Option<Settings>> {
        let Some(raw) = f.raw("settings") else {
            return Some(None);
        };
        // serde's derived structs also take an array of their fields in order; settings are
        // objects all the way down, as documented.
        let parsed = if has_array(raw) {
            Err("invalid type: sequence, expected an object".to_string())
        } else {
            Settings::deserialize(raw).map_err(|e| e.to_string())
        };
        match parsed {
            Ok(s) => Some(Some(s)),
            Err(e) => {
                f.push(Issue::value_error("settings", e));
                None
            }
        }
    }

    fn merged_into(self, base: &ProjectSettings) -> ProjectSettings {
        let mut s = base.clone();
        set(&mut s.access_ttl_s, self.access_ttl_s);
        set(&mut s.refresh_ttl_s, self.refresh_ttl_s);
        set(&mut s.refresh_reuse_grace_s, self.refresh_reuse_grace_s);
        set(&mut s.session_max_ttl_s, self.session_max_ttl_s);
        set(&mut s.max_sessions_per_user, self.max_sessions_per_user);
        if let Some(r) = self.rate_limits {
            r.merge_into(&mut s.rate_limits);
        }
        s
    }
}

impl RateLimitSettings {
    fn merge_into(self, r: &mut RateLimits) {
        for (slot, patch) in [
            (&mut r.login_per_account_ip, self.login_per_account_ip),
            (&mut r.login_per_account, self.login_per_account),
            (&mut r.login_per_ip, self.login_per_ip),
            (&mut r.signup_per_ip, self.signup_per_ip),
            (&mut r.public_per_ip, self.public_per_ip),
            (&mut r.per_client, self.per_client),
            (&mut r.per_secret_key, self.per_secret_key),
        ] {
            if let Some(p) = patch {
                p.merge_into(slot);
            }
        }
    }
}

impl LimitSetting {
    fn merge_into(self, l: &mut Limit) {
        set(&mut l.burst, self.burst);
        set(&mut l.per_minute, self.per_minute);
    }
}

/// `POST /admin/v1/projects`.
#[derive(ToSchema)]
pub struct CreateProject {
    /// An existing organization.
    #[schema(min_length = 1, max_length = 64, example = "acme")]
    pub org_slug: String,
    /// Not one of the node's own top-level names (`admin`, `docs`, …).
    #[schema(
        min_length = 3,
        max_length = 64,
        pattern = "^[a-z0-9][a-z0-9_-]{2,63}$",
        example = "acme_shop"
    )]
    pub slug: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Merged into the defaults.
    #[schema(nullable)]
    pub settings: Option<Settings>,
}

impl JsonBody for CreateProject {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let org_slug = f.string("org_slug", 1, 64);
        let slug = slug_field(f, "slug");
        let name = f.string("name", 1, 200);
        let settings = Settings::read(f);
        Some(CreateProject {
            org_slug: org_slug?,
            slug: slug?,
            name: name?,
            settings: settings?,
        })
    }
}

/// `PATCH /admin/v1/projects/{slug}`.
#[derive(ToSchema)]
pub struct PatchProject {
    /// Merged into the current settings.
    pub settings: Settings,
}

impl JsonBody for PatchProject {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let settings = Settings::read(f);
        if matches!(settings, Some(None)) {
            f.push(Issue::missing(body_loc("settings")));
        }
        Some(PatchProject {
            settings: settings??,
        })
    }
}

/// `PUT /admin/v1/maintenance` and `PUT /admin/v1/projects/{slug}/maintenance`.
#[derive(Serialize, ToSchema)]
pub struct MaintenanceBody {
    /// On: every tenant endpoint (of the project, or of every project) answers 503
    /// `maintenance_mode`; admin, health and metrics stay up. Stored: it holds across
    /// restarts and on every node.
    pub enabled: bool,
}

impl JsonBody for MaintenanceBody {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let enabled = f.bool("enabled", true);
        Some(MaintenanceBody { enabled: enabled? })
    }
}

/// The settings a request leaves the project with, once checked.
fn settings_from(
    base: &ProjectSettings,
    patch: Option<Settings>,
) -> Result<ProjectSettings, ApiError> {
    let Some(patch) = patch else {
        return Ok(base.clone());
    };
    let settings = patch.merged_into(base);
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
    let body = CreateProject::parse(req)?;
    let settings = settings_from(&ProjectSettings::default(), body.settings)?;
    let slug = body.slug;
    let applied = state
        .engine
        .apply(Change::CreateProject {
            org_slug: body.org_slug,
            slug: slug.clone(),
            name: body.name,
            settings,
        })
        .await?;
    audit(state, who, "create_project", Some(&slug), &slug).await;
    project_answer(StatusCode::CREATED, applied, state)
}

pub async fn one(state: &AppState, req: &Request, who: &AdminPrincipal, slug: &str) -> Handled {
    let current = project(state, slug)?;
    if req.method == Method::GET {
        return Answer::json(StatusCode::OK, &view(&current.project, &current.org_slug));
    }
    let body = PatchProject::parse(req)?;
    let settings = settings_from(&current.project.settings, Some(body.settings))?;
    let applied = state
        .engine
        .apply(Change::UpdateSettings {
            slug: slug.to_string(),
            settings,
        })
        .await?;
    audit(state, who, "update_project_settings", Some(slug), slug).await;
    project_answer(StatusCode::OK, applied, state)
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
        return Answer::json(StatusCode::OK, &MaintenanceBody { enabled: current });
    }
    let enabled = MaintenanceBody::parse(req)?.enabled;
    let change = match slug {
        Some(s) => Change::SetProjectMaintenance {
            slug: s.to_string(),
            enabled,
        },
        None => Change::SetGlobalMaintenance { enabled },
    };
    state.engine.apply(change).await?;
    audit(
        state,
        who,
        if enabled {
            "enable_maintenance"
        } else {
            "disable_maintenance"
        },
        slug,
        slug.unwrap_or("*"),
    )
    .await;
    Answer::json(StatusCode::OK, &MaintenanceBody { enabled })
}

/// `GET /admin/v1/projects`
#[utoipa::path(get, path = "/admin/v1/projects", tag = "admin", security(("admin" = []), ("portal" = [])),
    responses((status = 200, description = "Every project, by slug", body = ProjectList)))]
pub fn list_doc() {}

/// `POST /admin/v1/projects`
#[utoipa::path(post, path = "/admin/v1/projects", tag = "admin", security(("admin" = []), ("portal" = [])),
    request_body = CreateProject,
    responses(
        (status = 201, description = "Created", body = ProjectOut),
        (status = 404, description = "`not_found`: no organization has `org_slug`", body = CodedError),
        (status = 409, description = "`already_exists`: the slug is taken", body = CodedError)))]
pub fn create_doc() {}

/// `GET /admin/v1/projects/{slug}`
#[utoipa::path(get, path = "/admin/v1/projects/{slug}", tag = "admin", security(("admin" = []), ("portal" = [])),
    params(("slug" = String, Path)),
    responses(
        (status = 200, description = "The project", body = ProjectOut),
        (status = 404, description = "`project_not_found`", body = CodedError)))]
pub fn get_doc() {}

/// `PATCH /admin/v1/projects/{slug}`
#[utoipa::path(patch, path = "/admin/v1/projects/{slug}", tag = "admin", security(("admin" = []), ("portal" = [])),
    params(("slug" = String, Path)), request_body = PatchProject,
    responses(
        (status = 200, description = "The project with its new settings", body = ProjectOut),
        (status = 404, description = "`project_not_found`", body = CodedError)))]
pub fn patch_doc() {}

/// `GET /admin/v1/projects/{slug}/maintenance`
#[utoipa::path(get, path = "/admin/v1/projects/{slug}/maintenance", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path)),
    responses(
        (status = 200, description = "The project's switch", body = MaintenanceBody),
        (status = 404, description = "`project_not_found`", body = CodedError)))]
pub fn project_maintenance_get_doc() {}

/// `PUT /admin/v1/projects/{slug}/maintenance`
#[utoipa::path(put, path = "/admin/v1/projects/{slug}/maintenance", tag = "admin",
    security(("admin" = []), ("portal" = [])), params(("slug" = String, Path)), request_body = MaintenanceBody,
    responses(
        (status = 200, description = "Switched", body = MaintenanceBody),
        (status = 404, description = "`project_not_found`", body = CodedError)))]
pub fn project_maintenance_put_doc() {}

/// `GET /admin/v1/maintenance`
#[utoipa::path(get, path = "/admin/v1/maintenance", tag = "admin", security(("admin" = []), ("portal" = [])),
    responses((status = 200, description = "The node-wide switch (every project)", body = MaintenanceBody)))]
pub fn node_maintenance_get_doc() {}

/// `PUT /admin/v1/maintenance`
#[utoipa::path(put, path = "/admin/v1/maintenance", tag = "admin", security(("admin" = []), ("portal" = [])),
    request_body = MaintenanceBody,
    responses((status = 200, description = "Switched for every project", body = MaintenanceBody)))]
pub fn node_maintenance_put_doc() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn bump(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => m.values_mut().for_each(bump),
            serde_json::Value::Number(n) => {
                *v = serde_json::json!(n.as_u64().unwrap_or_default() + 1)
            }
            _ => {}
        }
    }

    /// Every field of `ProjectSettings` can be set through `Settings` (serde would refuse an
    /// unknown one), and setting them all, each to a new value, gives exactly those values.
    #[test]
    fn settings_cover_every_project_setting() {
        let mut json = serde_json::to_value(ProjectSettings::default()).expect("json");
        bump(&mut json);
        let target: ProjectSettings = serde_json::from_value(json.clone()).expect("settings");
        let patch = Settings::deserialize(json).expect("every setting is a field of Settings");
        assert_eq!(patch.merged_into(&ProjectSettings::default()), target);
        let empty = Settings::deserialize(serde_json::json!({})).expect("empty patch");
        assert_eq!(empty.merged_into(&target), target, "absent keeps");
    }
}
