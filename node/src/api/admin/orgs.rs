//! `/admin/v1/orgs`: create and list organizations.

use http::{Method, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use super::{audit, AdminPrincipal};
use crate::api::AppState;
use crate::http::schema::{CodedError, JsonBody};
use crate::http::validation::Fields;
use crate::http::{format_time, Answer, Handled, Request};
use commonrock_actors::model::Org;
use commonrock_actors::tenant::{Applied, Change};

#[derive(Serialize, ToSchema)]
pub struct OrgView {
    pub id: uuid::Uuid,
    pub slug: String,
    pub name: String,
    pub created_at: String,
}

impl From<&Org> for OrgView {
    fn from(o: &Org) -> Self {
        OrgView {
            id: o.id,
            slug: o.slug.clone(),
            name: o.name.clone(),
            created_at: format_time(o.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OrgList {
    orgs: Vec<OrgView>,
}

/// `POST /admin/v1/orgs`.
#[derive(ToSchema)]
pub struct CreateOrg {
    /// Not one of the node's own top-level names (`admin`, `docs`, …).
    #[schema(
        min_length = 3,
        max_length = 64,
        pattern = "^[a-z0-9][a-z0-9_-]{2,63}$",
        example = "acme"
    )]
    pub slug: String,
    #[schema(min_length = 1, max_length = 200, example = "Acme")]
    pub name: String,
}

impl JsonBody for CreateOrg {
    fn read(f: &mut Fields<'_>, _req: &Request) -> Option<Self> {
        let slug = super::projects::slug_field(f, "slug");
        let name = f.string("name", 1, 200);
        Some(CreateOrg {
            slug: slug?,
            name: name?,
        })
    }
}

/// `GET /admin/v1/orgs`
#[utoipa::path(get, path = "/admin/v1/orgs", tag = "admin", security(("admin" = []), ("portal" = [])),
    responses((status = 200, description = "Every organization, by slug", body = OrgList)))]
pub fn list_doc() {}

/// `POST /admin/v1/orgs`
#[utoipa::path(post, path = "/admin/v1/orgs", tag = "admin", security(("admin" = []), ("portal" = [])),
    request_body = CreateOrg,
    responses(
        (status = 201, description = "Created", body = OrgView),
        (status = 409, description = "`already_exists`: the slug is taken", body = CodedError)))]
pub fn create_doc() {}

pub async fn handle(state: &AppState, req: &Request, who: &AdminPrincipal) -> Handled {
    if req.method == Method::GET {
        let tenants = state.engine.tenants();
        let mut orgs: Vec<&Org> = tenants.orgs.values().collect();
        orgs.sort_by(|a, b| a.slug.cmp(&b.slug));
        let orgs = orgs.into_iter().map(OrgView::from).collect();
        return Answer::json(StatusCode::OK, &OrgList { orgs });
    }
    let body = CreateOrg::parse(req)?;
    let change = Change::CreateOrg {
        slug: body.slug,
        name: body.name,
    };
    match state.engine.apply(change).await? {
        Applied::Org(org) => {
            audit(state, who, "create_org", None, &org.slug).await;
            Answer::json(StatusCode::CREATED, &OrgView::from(&org))
        }
        _ => Err(commonrock_actors::DomainError::Internal("unexpected apply result".into()).into()),
    }
}
