//! `/admin/v1/orgs`: create and list organizations.

use http::{Method, StatusCode};
use serde::Serialize;

use super::{audit, AdminPrincipal};
use crate::api::AppState;
use crate::http::validation::{validated, Fields};
use crate::http::{format_time, Answer, Handled, Request};
use commonrock_actors::model::Org;
use commonrock_actors::tenant::{Applied, Change};

#[derive(Serialize)]
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

#[derive(Serialize)]
struct OrgList {
    orgs: Vec<OrgView>,
}

pub async fn handle(state: &AppState, req: &Request, who: &AdminPrincipal) -> Handled {
    if req.method == Method::GET {
        let tenants = state.engine.tenants();
        let mut orgs: Vec<&Org> = tenants.orgs.values().collect();
        orgs.sort_by(|a, b| a.slug.cmp(&b.slug));
        let orgs = orgs.into_iter().map(OrgView::from).collect();
        return Answer::json(StatusCode::OK, &OrgList { orgs });
    }
    let body = req.json()?;
    let mut f = Fields::of(&body)?;
    let slug = super::projects::slug_field(&mut f, "slug");
    let name = f.string("name", 1, 200);
    f.finish()?;
    let change = Change::CreateOrg {
        slug: validated(slug)?,
        name: validated(name)?,
    };
    match state.engine.apply(change).await? {
        Applied::Org(org) => {
            audit(state, who, "create_org", &org.slug);
            Answer::json(StatusCode::CREATED, &OrgView::from(&org))
        }
        _ => Err(commonrock_actors::DomainError::Internal("unexpected apply result".into()).into()),
    }
}
