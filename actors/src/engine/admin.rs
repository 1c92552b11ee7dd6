//! Admin operations on end users: look up, disable, delete (cascading to sessions), set a
//! password. Tenant configuration changes go through `Engine::apply` instead.

use uuid::Uuid;

use super::Engine;
use crate::error::DomainError;
use crate::model::EndUser;

impl Engine {
    pub async fn end_user(
        &self,
        project_id: Uuid,
        external_id: &str,
    ) -> Result<EndUser, DomainError> {
        self.store
            .get_end_user(project_id, external_id)
            .await?
            .ok_or(DomainError::NotFound("end user"))
    }

    /// Disabling also revokes every session: a disabled user must be locked out at once.
    pub async fn set_end_user_disabled(
        &self,
        project_id: Uuid,
        external_id: &str,
        disabled: bool,
    ) -> Result<EndUser, DomainError> {
        let mut user = self.end_user(project_id, external_id).await?;
        if user.disabled != disabled {
            let expected = user.version;
            user.disabled = disabled;
            user.version += 1;
            if !self.store.cas_end_user(&user, expected).await? {
                return Err(DomainError::unavailable("end user changed concurrently"));
            }
        }
        if disabled {
            self.revoke_user_sessions(project_id, user.id, None).await?;
        }
        Ok(user)
    }

    pub async fn delete_end_user(
        &self,
        project_id: Uuid,
        external_id: &str,
    ) -> Result<(), DomainError> {
        let user = self.end_user(project_id, external_id).await?;
        self.revoke_user_sessions(project_id, user.id, None).await?;
        self.store.delete_end_user(project_id, external_id).await?;
        self.security_event("end_user_deleted");
        Ok(())
    }

    /// Sets a new password and revokes every session (an admin reset means "log out everywhere").
    pub async fn admin_set_password(
        &self,
        project_id: Uuid,
        external_id: &str,
        password: String,
    ) -> Result<(), DomainError> {
        let user = self.end_user(project_id, external_id).await?;
        let id = user.id;
        self.set_password_hash(user, password).await?;
        self.revoke_user_sessions(project_id, id, None).await?;
        Ok(())
    }
}
