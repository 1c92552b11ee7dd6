//! The route table: a request path and method resolve to a target with its path parameters,
//! or to 404 `not_found` / 405 `method_not_allowed`. Each target names the module that
//! handles it; the template is the low-cardinality label used in metrics and logs.

use http::Method;

use crate::http::{ApiError, Code};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    Docs(String),
    DocsRedirect,
    /// `/portal/*`: the portal page's files (api::portal).
    Portal(String),
    /// `/portal` without the slash.
    PortalRedirect,
    /// `OPTIONS /{slug}/v1/public/*`.
    Preflight {
        slug: String,
    },
    /// `/{slug}/v1/public/end-users/*` (api::public::end_users).
    EndUsers {
        slug: String,
        action: EndUserAction,
    },
    /// `/{slug}/v1/public/end-users/sessions*` (api::public::sessions).
    OwnSessions {
        slug: String,
        action: OwnSessionAction,
    },
    /// `/{slug}/v1/sessions/introspect[/batch]` (api::introspection).
    Introspect {
        slug: String,
        batch: bool,
    },
    /// `POST /{slug}/v1/public/sql/execute` (`public`: client + Bearer) and
    /// `POST /{slug}/v1/sql/execute` (secret key) (api::sql).
    SqlExecute {
        slug: String,
        public: bool,
    },
    /// `/admin/v1/*` (api::admin).
    Admin(AdminTarget),
}

impl Target {
    /// The project slug of a tenant route.
    pub fn slug(&self) -> Option<&str> {
        match self {
            Target::Preflight { slug }
            | Target::EndUsers { slug, .. }
            | Target::OwnSessions { slug, .. }
            | Target::Introspect { slug, .. }
            | Target::SqlExecute { slug, .. } => Some(slug),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndUserAction {
    Signup,
    Login,
    Refresh,
    Logout,
    Me,
    Password,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnSessionAction {
    List,
    RevokeOthers,
    Revoke(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminTarget {
    Orgs,
    Projects,
    Project(String),
    Clients(String),
    Client(String, String),
    ApiKeys(String),
    ApiKey(String, String),
    ProjectMaintenance(String),
    Maintenance,
    Cluster,
    EndUser(String, String),
    EndUserPassword(String, String),
    EndUserSessions(String, String),
    Session(String, String),
    AdminTokens,
    AdminToken(String),
    /// `POST /admin/v1/auth/login`: the one admin call without credentials.
    AuthLogin,
    AuthLogout,
    AuthMe,
    TotpEnroll,
    TotpConfirm,
    AdminUsers,
    AdminUser(String),
    AdminUserTotp(String),
    AuditLog,
    /// `/admin/v1/projects/{slug}/sql/execute`
    SqlExecute(String),
    CrashShard(String),
    CrashTenants,
    /// `/admin/v1/projects/{slug}/sql/tables`
    SqlTables(String),
    /// `/admin/v1/projects/{slug}/sql/tables/{name}`
    SqlTable(String, String),
    /// `/admin/v1/projects/{slug}/sql/query-definitions`
    SqlDefinitions(String),
    /// `/admin/v1/projects/{slug}/sql/query-definitions/{id}`
    SqlDefinition(String, String),
}

pub struct Resolved {
    pub target: Target,
    pub template: &'static str,
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Resolves `method` + `path`; `OPTIONS` is allowed on every public path (CORS preflight).
pub fn resolve(method: &Method, path: &str) -> Result<Resolved, ApiError> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let get = &[Method::GET][..];
    let post = &[Method::POST][..];
    let (template, allowed, target): (&'static str, &[Method], Target) = match segs.as_slice() {
        ["healthz"] => ("/healthz", get, Target::Healthz),
        ["readyz"] => ("/readyz", get, Target::Readyz),
        ["metrics"] => ("/metrics", get, Target::Metrics),
        ["openapi.json"] => ("/openapi.json", get, Target::OpenApi),
        // Without the trailing slash the page's relative asset paths would miss `/docs/`.
        ["docs"] => ("/docs", get, Target::DocsRedirect),
        ["docs", rest @ ..] => ("/docs/*", get, Target::Docs(rest.join("/"))),
        ["portal"] => ("/portal", get, Target::PortalRedirect),
        ["portal", rest @ ..] => ("/portal/*", get, Target::Portal(rest.join("/"))),
        ["admin", "v1", rest @ ..] => return resolve_admin(method, rest),
        [slug, "v1", "public", rest @ ..] if *method == Method::OPTIONS && !rest.is_empty() => {
            return Ok(Resolved {
                template: "/{slug}/v1/public/*",
                target: Target::Preflight { slug: decode(slug) },
            })
        }
        [slug, "v1", "public", "end-users", action] => {
            let slug = decode(slug);
            let (template, allowed, action) = match *action {
                "signup" => (
                    "/{slug}/v1/public/end-users/signup",
                    post,
                    EndUserAction::Signup,
                ),
                "login" => (
                    "/{slug}/v1/public/end-users/login",
                    post,
                    EndUserAction::Login,
                ),
                "refresh" => (
                    "/{slug}/v1/public/end-users/refresh",
                    post,
                    EndUserAction::Refresh,
                ),
                "logout" => (
                    "/{slug}/v1/public/end-users/logout",
                    post,
                    EndUserAction::Logout,
                ),
                "password" => (
                    "/{slug}/v1/public/end-users/password",
                    post,
                    EndUserAction::Password,
                ),
                "me" => ("/{slug}/v1/public/end-users/me", get, EndUserAction::Me),
                "sessions" => {
                    return check(
                        method,
                        "/{slug}/v1/public/end-users/sessions",
                        get,
                        Target::OwnSessions {
                            slug,
                            action: OwnSessionAction::List,
                        },
                    )
                }
                _ => return Err(ApiError::code(Code::NotFound)),
            };
            (template, allowed, Target::EndUsers { slug, action })
        }
        [slug, "v1", "public", "end-users", "sessions", "revoke-others"] => (
            "/{slug}/v1/public/end-users/sessions/revoke-others",
            post,
            Target::OwnSessions {
                slug: decode(slug),
                action: OwnSessionAction::RevokeOthers,
            },
        ),
        [slug, "v1", "public", "end-users", "sessions", id] => (
            "/{slug}/v1/public/end-users/sessions/{session_id}",
            &[Method::DELETE][..],
            Target::OwnSessions {
                slug: decode(slug),
                action: OwnSessionAction::Revoke(decode(id)),
            },
        ),
        [slug, "v1", "public", "sql", "execute"] => (
            "/{slug}/v1/public/sql/execute",
            post,
            Target::SqlExecute {
                slug: decode(slug),
                public: true,
            },
        ),
        [slug, "v1", "sql", "execute"] => (
            "/{slug}/v1/sql/execute",
            post,
            Target::SqlExecute {
                slug: decode(slug),
                public: false,
            },
        ),
        [slug, "v1", "sessions", "introspect"] => (
            "/{slug}/v1/sessions/introspect",
            post,
            Target::Introspect {
                slug: decode(slug),
                batch: false,
            },
        ),
        [slug, "v1", "sessions", "introspect", "batch"] => (
            "/{slug}/v1/sessions/introspect/batch",
            post,
            Target::Introspect {
                slug: decode(slug),
                batch: true,
            },
        ),
        _ => return Err(ApiError::code(Code::NotFound)),
    };
    check(method, template, allowed, target)
}

fn check(
    method: &Method,
    template: &'static str,
    allowed: &[Method],
    target: Target,
) -> Result<Resolved, ApiError> {
    if allowed.contains(method) {
        Ok(Resolved { target, template })
    } else {
        let mut methods = allowed.to_vec();
        // Every public path also answers the CORS preflight.
        if template.starts_with("/{slug}/v1/public/") {
            methods.push(Method::OPTIONS);
        }
        Err(ApiError::method_not_allowed(&methods))
    }
}

fn resolve_admin(method: &Method, segs: &[&str]) -> Result<Resolved, ApiError> {
    use AdminTarget as A;
    use Method as M;
    let d = decode;
    let (template, allowed, target): (&'static str, Vec<Method>, A) = match segs {
        ["orgs"] => ("/admin/v1/orgs", vec![M::GET, M::POST], A::Orgs),
        ["projects"] => ("/admin/v1/projects", vec![M::GET, M::POST], A::Projects),
        ["projects", s] => (
            "/admin/v1/projects/{slug}",
            vec![M::GET, M::PATCH],
            A::Project(d(s)),
        ),
        ["projects", s, "clients"] => (
            "/admin/v1/projects/{slug}/clients",
            vec![M::GET, M::POST],
            A::Clients(d(s)),
        ),
        ["projects", s, "clients", id] => (
            "/admin/v1/projects/{slug}/clients/{client_id}",
            vec![M::DELETE],
            A::Client(d(s), d(id)),
        ),
        ["projects", s, "api-keys"] => (
            "/admin/v1/projects/{slug}/api-keys",
            vec![M::GET, M::POST],
            A::ApiKeys(d(s)),
        ),
        ["projects", s, "api-keys", id] => (
            "/admin/v1/projects/{slug}/api-keys/{id}",
            vec![M::DELETE],
            A::ApiKey(d(s), d(id)),
        ),
        ["projects", s, "maintenance"] => (
            "/admin/v1/projects/{slug}/maintenance",
            vec![M::GET, M::PUT],
            A::ProjectMaintenance(d(s)),
        ),
        ["cluster"] => ("/admin/v1/cluster", vec![M::GET], A::Cluster),
        ["maintenance"] => (
            "/admin/v1/maintenance",
            vec![M::GET, M::PUT],
            A::Maintenance,
        ),
        ["projects", s, "end-users", e] => (
            "/admin/v1/projects/{slug}/end-users/{external_id}",
            vec![M::GET, M::PATCH, M::DELETE],
            A::EndUser(d(s), d(e)),
        ),
        ["projects", s, "end-users", e, "password"] => (
            "/admin/v1/projects/{slug}/end-users/{external_id}/password",
            vec![M::PUT],
            A::EndUserPassword(d(s), d(e)),
        ),
        ["projects", s, "end-users", e, "sessions"] => (
            "/admin/v1/projects/{slug}/end-users/{external_id}/sessions",
            vec![M::GET, M::DELETE],
            A::EndUserSessions(d(s), d(e)),
        ),
        ["projects", s, "sessions", id] => (
            "/admin/v1/projects/{slug}/sessions/{session_id}",
            vec![M::DELETE],
            A::Session(d(s), d(id)),
        ),
        ["projects", s, "sql", "tables"] => (
            "/admin/v1/projects/{slug}/sql/tables",
            vec![M::GET, M::POST],
            A::SqlTables(d(s)),
        ),
        ["projects", s, "sql", "tables", name] => (
            "/admin/v1/projects/{slug}/sql/tables/{name}",
            vec![M::GET, M::DELETE],
            A::SqlTable(d(s), d(name)),
        ),
        ["projects", s, "sql", "query-definitions"] => (
            "/admin/v1/projects/{slug}/sql/query-definitions",
            vec![M::GET, M::POST],
            A::SqlDefinitions(d(s)),
        ),
        ["projects", s, "sql", "query-definitions", id] => (
            "/admin/v1/projects/{slug}/sql/query-definitions/{id}",
            vec![M::GET, M::PUT, M::DELETE],
            A::SqlDefinition(d(s), d(id)),
        ),
        ["admin-tokens"] => (
            "/admin/v1/admin-tokens",
            vec![M::GET, M::POST],
            A::AdminTokens,
        ),
        ["admin-tokens", id] => (
            "/admin/v1/admin-tokens/{id}",
            vec![M::DELETE],
            A::AdminToken(d(id)),
        ),
        ["auth", "login"] => ("/admin/v1/auth/login", vec![M::POST], A::AuthLogin),
        ["auth", "logout"] => ("/admin/v1/auth/logout", vec![M::POST], A::AuthLogout),
        ["auth", "me"] => ("/admin/v1/auth/me", vec![M::GET], A::AuthMe),
        ["auth", "totp", "enroll"] => ("/admin/v1/auth/totp/enroll", vec![M::POST], A::TotpEnroll),
        ["auth", "totp", "confirm"] => {
            ("/admin/v1/auth/totp/confirm", vec![M::POST], A::TotpConfirm)
        }
        ["admin-users"] => (
            "/admin/v1/admin-users",
            vec![M::GET, M::POST],
            A::AdminUsers,
        ),
        ["admin-users", id] => (
            "/admin/v1/admin-users/{id}",
            vec![M::GET, M::PATCH, M::DELETE],
            A::AdminUser(d(id)),
        ),
        ["admin-users", id, "totp"] => (
            "/admin/v1/admin-users/{id}/totp",
            vec![M::DELETE],
            A::AdminUserTotp(d(id)),
        ),
        ["audit-log"] => ("/admin/v1/audit-log", vec![M::GET], A::AuditLog),
        ["projects", s, "sql", "execute"] => (
            "/admin/v1/projects/{slug}/sql/execute",
            vec![M::POST],
            A::SqlExecute(d(s)),
        ),
        ["debug", "shards", n, "crash"] => (
            "/admin/v1/debug/shards/{n}/crash",
            vec![M::POST],
            A::CrashShard(d(n)),
        ),
        ["debug", "tenants", "crash"] => (
            "/admin/v1/debug/tenants/crash",
            vec![M::POST],
            A::CrashTenants,
        ),
        _ => return Err(ApiError::code(Code::NotFound)),
    };
    check(method, template, &allowed, Target::Admin(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_tenant_routes_and_distinguishes_404_from_405() {
        let r = resolve(
            &Method::POST,
            "/org_demo_payments/v1/public/end-users/login",
        )
        .expect("route");
        assert_eq!(
            r.target,
            Target::EndUsers {
                slug: "org_demo_payments".into(),
                action: EndUserAction::Login
            }
        );
        let e = resolve(&Method::GET, "/org_demo_payments/v1/public/end-users/login")
            .err()
            .expect("405");
        assert_eq!(e.status, http::StatusCode::METHOD_NOT_ALLOWED);
        let e = resolve(&Method::GET, "/nope").err().expect("404");
        assert_eq!(e.status, http::StatusCode::NOT_FOUND);
        let r = resolve(&Method::OPTIONS, "/p1x/v1/public/anything/at/all").expect("preflight");
        assert_eq!(r.target, Target::Preflight { slug: "p1x".into() });
    }

    #[test]
    fn sql_routes_resolve() {
        let r = resolve(&Method::POST, "/p1x/v1/public/sql/execute").expect("route");
        assert_eq!(
            r.target,
            Target::SqlExecute {
                slug: "p1x".into(),
                public: true
            }
        );
        let r = resolve(&Method::POST, "/p1x/v1/sql/execute").expect("route");
        assert_eq!(r.template, "/{slug}/v1/sql/execute");
        let e = resolve(&Method::GET, "/p1x/v1/sql/execute")
            .err()
            .expect("405");
        assert_eq!(e.status, http::StatusCode::METHOD_NOT_ALLOWED);
        let r = resolve(
            &Method::PUT,
            "/admin/v1/projects/p1x/sql/query-definitions/abc",
        )
        .expect("route");
        assert_eq!(
            r.target,
            Target::Admin(AdminTarget::SqlDefinition("p1x".into(), "abc".into()))
        );
    }

    #[test]
    fn admin_path_segments_are_percent_decoded() {
        let r = resolve(&Method::GET, "/admin/v1/projects/p1x/end-users/a%2Fb%20c").expect("route");
        assert_eq!(
            r.target,
            Target::Admin(AdminTarget::EndUser("p1x".into(), "a/b c".into()))
        );
    }
}
